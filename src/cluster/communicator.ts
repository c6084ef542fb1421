/**
 * Collectives between the ranks of a multi-process run, over TCP with rank 0 as the hub
 * (its address from MASTER_ADDR/MASTER_PORT, as torch.distributed does). Every rank calls
 * the same collectives in the same order; each call resolves with the root's payload and
 * every rank's error, so an error on one rank reaches all of them. A rank that dies closes
 * its socket, and every pending and later collective rejects at once instead of hanging.
 */
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { ConnectionError, DosnaError } from '../errors.js';
import type { SerializedError } from '../remote-error.js';
import type { RankInfo } from './ranks.js';
import { encode, onMessages } from './wire.js';

export interface CommunicatorOptions {
  /** How long ranks wait for each other to connect (default 60 s). */
  readonly connectTimeoutMs?: number;
  /** Fail a collective that waits longer than this (default: no limit; dead ranks are noticed anyway). */
  readonly collectiveTimeoutMs?: number;
}

export interface CollectiveResult {
  /** What the root contributed. */
  readonly payload: unknown;
  /** What every rank contributed, in rank order. */
  readonly payloads: readonly unknown[];
  /** Each rank's error, or null. */
  readonly errors: readonly (SerializedError | null)[];
}

interface Arrive { type: 'arrive'; seq: number; kind: string; rank: number; payload?: unknown; error?: SerializedError | null }
interface Release { type: 'release'; seq: number; payload?: unknown; payloads: unknown[]; errors: (SerializedError | null)[]; mismatch?: string }
interface Hello { type: 'hello'; rank: number; size: number }
interface Abort { type: 'abort'; reason: string }
type Message = Arrive | Release | Hello | Abort | { type: 'welcome' };

interface Pending { resolve: (r: CollectiveResult) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }

export class Communicator {
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;
  private closing = false;
  // Hub state (rank 0 only).
  private readonly peers = new Map<number, Socket>();
  private readonly arrivals = new Map<number, Arrive[]>();

  private constructor(
    readonly rank: number,
    readonly size: number,
    private readonly options: CommunicatorOptions,
    private readonly server?: Server,
    private readonly hubSocket?: Socket,
  ) {}

  /** Connects this rank to the others (rank 0 listens, the others connect); resolves when all are there. */
  static async open(info: RankInfo, options: CommunicatorOptions = {}): Promise<Communicator> {
    if (info.size === 1) return new Communicator(0, 1, options);
    const timeout = options.connectTimeoutMs ?? 60_000;
    return info.rank === 0 ? Communicator.openHub(info, options, timeout) : Communicator.openSpoke(info, options, timeout);
  }

  private static openHub(info: RankInfo, options: CommunicatorOptions, timeout: number): Promise<Communicator> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      const comm = new Communicator(0, info.size, options, server);
      const timer = setTimeout(() => {
        const missing = Array.from({ length: info.size - 1 }, (_, i) => i + 1).filter((r) => !comm.peers.has(r));
        server.close();
        for (const s of comm.peers.values()) s.destroy();
        reject(new ConnectionError(`rank 0 waited ${timeout} ms on ${info.masterAddr}:${info.masterPort} for rank(s) ${missing.join(', ')}, which never connected`));
      }, timeout);
      server.on('error', (error) => {
        clearTimeout(timer);
        reject(new ConnectionError(`rank 0 cannot listen on ${info.masterAddr}:${info.masterPort} (MASTER_ADDR/MASTER_PORT): ${error.message}`, { cause: error }));
      });
      server.on('connection', (socket) => {
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 10_000);
        let peerRank = -1;
        onMessages(socket, (raw) => {
          const message = raw as Message;
          if (message.type === 'hello') {
            if (message.size !== info.size || message.rank < 1 || message.rank >= info.size || comm.peers.has(message.rank)) {
              socket.end(encode({ type: 'abort', reason: `rank 0 refused a peer announcing rank ${message.rank} of ${message.size} (expected ranks 1..${info.size - 1} of ${info.size})` }));
              return;
            }
            peerRank = message.rank;
            comm.peers.set(peerRank, socket);
            if (comm.peers.size === info.size - 1) {
              clearTimeout(timer);
              for (const s of comm.peers.values()) s.write(encode({ type: 'welcome' }));
              resolve(comm);
            }
          } else if (message.type === 'arrive') {
            comm.hubArrive(message);
          }
        });
        socket.on('close', () => {
          if (peerRank >= 0 && comm.peers.get(peerRank) === socket) comm.peerLost(peerRank);
        });
        socket.on('error', () => { /* 'close' follows and reports it */ });
      });
      const host = ['127.0.0.1', 'localhost', '::1'].includes(info.masterAddr) ? info.masterAddr : undefined;
      server.listen(info.masterPort, host);
    });
  }

  private static openSpoke(info: RankInfo, options: CommunicatorOptions, timeout: number): Promise<Communicator> {
    const deadline = Date.now() + timeout;
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const socket = netConnect(info.masterPort, info.masterAddr);
        let welcomed = false;
        let comm: Communicator | undefined;
        socket.once('connect', () => {
          socket.setNoDelay(true);
          socket.setKeepAlive(true, 10_000);
          comm = new Communicator(info.rank, info.size, options, undefined, socket);
          const c = comm;
          onMessages(socket, (raw) => {
            const message = raw as Message;
            if (message.type === 'welcome') {
              welcomed = true;
              resolve(c);
            } else if (message.type === 'release') {
              c.released(message);
            } else if (message.type === 'abort') {
              if (!welcomed) reject(new ConnectionError(message.reason));
              c.fail(new ConnectionError(message.reason));
            }
          });
          socket.write(encode({ type: 'hello', rank: info.rank, size: info.size }));
        });
        socket.on('error', (error: NodeJS.ErrnoException) => {
          if (comm) return; // 'close' reports it
          socket.destroy();
          if (Date.now() < deadline && (error.code === 'ECONNREFUSED' || error.code === 'ENOENT' || error.code === 'ECONNRESET')) {
            setTimeout(attempt, 100);
          } else {
            reject(new ConnectionError(`rank ${info.rank} cannot reach rank 0 at ${info.masterAddr}:${info.masterPort} (MASTER_ADDR/MASTER_PORT): ${error.message}`, { cause: error }));
          }
        });
        socket.on('close', () => {
          if (!comm) return;
          if (!welcomed) reject(new ConnectionError(`rank 0 at ${info.masterAddr}:${info.masterPort} closed the connection before every rank arrived`));
          if (!comm.closing) comm.fail(new ConnectionError(`rank ${info.rank} lost its connection to rank 0 (the hub died or closed)`));
        });
      };
      attempt();
    });
  }

  /** Arrives at the next collective; resolves when every rank has arrived. */
  collective(kind: string, payload?: unknown, error?: SerializedError | null): Promise<CollectiveResult> {
    if (this.size === 1) return Promise.resolve({ payload, payloads: [payload], errors: [error ?? null] });
    if (this.failure) return Promise.reject(this.failure);
    const seq = ++this.seq;
    const promise = new Promise<CollectiveResult>((resolve, reject) => {
      const entry: Pending = { resolve, reject };
      const limit = this.options.collectiveTimeoutMs;
      if (limit) {
        entry.timer = setTimeout(() => this.fail(new ConnectionError(`collective '${kind}' (#${seq}) on rank ${this.rank} waited more than ${limit} ms for the other ranks`)), limit);
      }
      this.pending.set(seq, entry);
    });
    const arrive: Arrive = { type: 'arrive', seq, kind, rank: this.rank, payload, error: error ?? null };
    if (this.rank === 0) this.hubArrive(arrive);
    else this.hubSocket!.write(encode(arrive));
    return promise;
  }

  private hubArrive(arrive: Arrive): void {
    let list = this.arrivals.get(arrive.seq);
    if (!list) this.arrivals.set(arrive.seq, (list = []));
    list.push(arrive);
    if (list.length < this.size) return;
    this.arrivals.delete(arrive.seq);
    const errors: (SerializedError | null)[] = new Array(this.size).fill(null);
    const payloads: unknown[] = new Array(this.size).fill(null);
    for (const a of list) {
      errors[a.rank] = a.error ?? null;
      payloads[a.rank] = a.payload ?? null;
    }
    const kinds = new Set(list.map((a) => a.kind));
    const release: Release = {
      type: 'release', seq: arrive.seq, payload: list.find((a) => a.rank === 0)?.payload, payloads, errors,
      ...(kinds.size > 1 ? { mismatch: list.sort((a, b) => a.rank - b.rank).map((a) => `rank ${a.rank} called '${a.kind}'`).join(', ') } : {}),
    };
    const line = encode(release);
    for (const socket of this.peers.values()) socket.write(line);
    this.released(release);
  }

  private released(release: Release): void {
    const entry = this.pending.get(release.seq);
    if (!entry) return;
    this.pending.delete(release.seq);
    clearTimeout(entry.timer);
    if (release.mismatch) entry.reject(new DosnaError(`ranks disagree on the collective call #${release.seq}: ${release.mismatch}; every rank must make the same collective calls in the same order`));
    else entry.resolve({ payload: release.payload, payloads: release.payloads, errors: release.errors });
  }

  private peerLost(rank: number): void {
    if (this.closing) return;
    const reason = `rank ${rank} disconnected (it exited or was killed)`;
    for (const [r, socket] of this.peers) if (r !== rank) socket.write(encode({ type: 'abort', reason }));
    this.fail(new ConnectionError(reason));
  }

  /** Rejects every pending and later collective with `error`. */
  private fail(error: Error): void {
    this.failure ??= error;
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(this.failure);
    }
    this.pending.clear();
  }

  /** Waits for every rank, then closes the sockets. */
  async close(): Promise<void> {
    if (this.size === 1) return;
    if (!this.failure) await this.collective('close').catch(() => {});
    this.closing = true;
    this.hubSocket?.end();
    for (const socket of this.peers.values()) socket.end();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
