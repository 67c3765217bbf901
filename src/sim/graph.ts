/**
 * Graph helpers that reproduce ComfyUI's execution order and cache keys: the execution list (a
 * topological dissolve that prefers output nodes and their direct inputs, like
 * `comfy_execution/graph.py`) and the input signature of a node and its ancestors (the classic
 * cache key of `comfy_execution/caching.py`).
 */

export type PromptGraph = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

/** ComfyUI's `is_link`: `[str, int|float]`. */
export function isLink(v: unknown): v is [string, number] {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'number';
}

/** The order in which ComfyUI runs the nodes needed by a set of outputs. */
export class ExecutionList {
  private readonly pending = new Map<string, true>();
  private readonly blockCount = new Map<string, number>();
  private readonly blocking = new Map<string, Map<string, Set<number>>>();

  constructor(
    private readonly prompt: PromptGraph,
    private readonly isCached: (id: string) => boolean,
    private readonly isOutput: (id: string) => boolean,
  ) {}

  addNode(start: string): void {
    const stack = [start];
    const links: Array<[string, number, string]> = [];
    while (stack.length > 0) {
      const id = stack.pop() as string;
      if (this.pending.has(id)) continue;
      this.pending.set(id, true);
      this.blockCount.set(id, 0);
      this.blocking.set(id, new Map());
      const inputs = this.prompt[id]?.inputs ?? {};
      for (const value of Object.values(inputs)) {
        if (!isLink(value)) continue;
        const [from, socket] = value;
        if (this.isCached(from)) continue;
        stack.push(from);
        links.push([from, socket, id]);
      }
    }
    for (const [from, socket, to] of links) this.addStrongLink(from, socket, to);
  }

  private addStrongLink(from: string, socket: number, to: string): void {
    if (this.isCached(from)) return;
    this.addNode(from);
    const targets = this.blocking.get(from) as Map<string, Set<number>>;
    let sockets = targets.get(to);
    if (!sockets) {
      sockets = new Set();
      targets.set(to, sockets);
      this.blockCount.set(to, (this.blockCount.get(to) ?? 0) + 1);
    }
    sockets.add(socket);
  }

  isEmpty(): boolean {
    return this.pending.size === 0;
  }

  /** The next node to run (ComfyUI's `ux_friendly_pick_node`), or undefined on a dependency cycle. */
  next(): string | undefined {
    const ready = [...this.pending.keys()].filter((id) => this.blockCount.get(id) === 0);
    if (ready.length === 0) return undefined;
    for (const id of ready) if (this.isOutput(id)) return id;
    for (const id of ready) {
      for (const blocked of this.blocking.get(id)?.keys() ?? []) if (this.isOutput(blocked)) return id;
    }
    for (const id of ready) {
      for (const blocked of this.blocking.get(id)?.keys() ?? []) {
        for (const blocked2 of this.blocking.get(blocked)?.keys() ?? []) if (this.isOutput(blocked2)) return id;
      }
    }
    return ready[0];
  }

  /** Marks a node done, unblocking the nodes waiting for it. */
  complete(id: string): void {
    this.pending.delete(id);
    for (const to of this.blocking.get(id)?.keys() ?? []) this.blockCount.set(to, (this.blockCount.get(to) ?? 1) - 1);
    this.blocking.delete(id);
  }

  /** Nodes left in a cycle (what ComfyUI blames in a DependencyCycleError). */
  cycleNodes(): string[] {
    return [...this.pending.keys()];
  }
}

/** Canonical text of a literal input value (1, 1.0 and true hash alike, as in Python). */
function canonical(v: unknown): string {
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number') return Number.isNaN(v) ? `nan:${Math.random()}` : String(v);
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
}

/**
 * The classic cache key of a node: its class, IS_CHANGED result and literal inputs, plus the same
 * for every ancestor in a deterministic order, with links written as ancestor indexes. Two nodes
 * with equal keys produce equal outputs, whatever their ids.
 */
export function nodeSignature(
  prompt: PromptGraph,
  id: string,
  isChanged: (id: string) => string,
  includeId: (id: string) => boolean,
): string {
  const ancestors: string[] = [];
  const order = new Map<string, number>();
  const visit = (nodeId: string) => {
    const node = prompt[nodeId];
    if (!node) return;
    for (const key of Object.keys(node.inputs).sort()) {
      const v = node.inputs[key];
      if (!isLink(v)) continue;
      if (order.has(v[0])) continue;
      ancestors.push(v[0]);
      order.set(v[0], ancestors.length - 1);
      visit(v[0]);
    }
  };
  visit(id);
  const immediate = (nodeId: string): string => {
    const node = prompt[nodeId];
    if (!node) return `missing:${Math.random()}`;
    const parts = [JSON.stringify(node.class_type), isChanged(nodeId)];
    if (includeId(nodeId)) parts.push(JSON.stringify(nodeId));
    for (const key of Object.keys(node.inputs).sort()) {
      const v = node.inputs[key];
      parts.push(isLink(v) ? `${JSON.stringify(key)}=A${order.get(v[0])}:${v[1]}` : `${JSON.stringify(key)}=${canonical(v)}`);
    }
    return `(${parts.join('|')})`;
  };
  return [immediate(id), ...ancestors.map(immediate)].join('');
}

/** sha256-ready canonical JSON of a whole graph (sorted keys), for workflow identity. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
}
