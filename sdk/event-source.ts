/**
 * A minimal EventSource (server-sent events) over our socket `fetch`, for tRPC's
 * httpSubscriptionLink: Node 20 has no global EventSource, and a browser-style one could not
 * reach a Unix socket anyway. It does not reconnect by itself: a dropped stream closes it, and
 * the subscription ends with an error the caller can report (the daemon went away).
 */
type Listener = (event: { type: string; data?: string; lastEventId?: string }) => void;

export function eventSourceOver(fetchOverSocket: typeof fetch) {
  return class SocketEventSource {
    static readonly CONNECTING = 0;
    static readonly OPEN = 1;
    static readonly CLOSED = 2;
    readonly CONNECTING = 0;
    readonly OPEN = 1;
    readonly CLOSED = 2;
    readyState = 0;
    readonly #listeners = new Map<string, Set<Listener>>();
    readonly #abort = new AbortController();

    constructor(url: string) {
      void this.#read(url);
    }

    addEventListener(type: string, listener: Listener): void {
      let set = this.#listeners.get(type);
      if (set === undefined) this.#listeners.set(type, (set = new Set()));
      set.add(listener);
    }

    removeEventListener(type: string, listener: Listener): void {
      this.#listeners.get(type)?.delete(listener);
    }

    close(): void {
      this.readyState = this.CLOSED;
      this.#abort.abort();
    }

    #dispatch(type: string, fields: { data?: string; lastEventId?: string } = {}): void {
      for (const listener of this.#listeners.get(type) ?? []) listener({ type, ...fields });
    }

    async #read(url: string): Promise<void> {
      try {
        const response = await fetchOverSocket(url, { headers: { Accept: 'text/event-stream' }, signal: this.#abort.signal });
        if (!response.ok || response.body === null) throw new Error(`event stream answered HTTP ${response.status}`);
        this.readyState = this.OPEN;
        this.#dispatch('open');
        const decoder = new TextDecoder();
        let buffer = '';
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            this.#parse(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch {
        // Aborted by close(), or the daemon went away: either way the stream is over.
      }
      if (this.readyState !== this.CLOSED) {
        this.readyState = this.CLOSED;
        this.#dispatch('error');
      }
    }

    /** One SSE block: `event:`, `data:` (joined by newlines), `id:`; `:` lines are comments. */
    #parse(block: string): void {
      let type = 'message';
      const data: string[] = [];
      let lastEventId: string | undefined;
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon === 0) continue;
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') type = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id') lastEventId = value;
      }
      if (data.length === 0 && type === 'message') return;
      this.#dispatch(type, { data: data.join('\n'), ...(lastEventId !== undefined && { lastEventId }) });
    }
  };
}
