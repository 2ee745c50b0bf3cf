// Target 7: eviction (`/request` on a full pool) vs `docker compose stop` + `up -d` by hand.
import { evictRounds } from './compose-rounds.js';
import { runStandalone } from './lib.js';

await runStandalone('evict', 'Eviction vs compose stop + up by hand (target 7)', evictRounds);
