// Target 6: `/request` into a free slot vs `docker compose up -d <svc>` by hand.
import { startRounds } from './compose-rounds.js';
import { runStandalone } from './lib.js';

await runStandalone('start', 'Start into a free slot vs compose by hand (target 6)', startRounds);
