"""A local test gateway speaking the Databento live protocol (notes §4.2), for the real ``databento.Live``.

One asyncio server (on a background thread, or in its own process via ``python tests/gateway.py``)
serves any number of datasets: the ``dataset=`` of a client's auth line picks the :class:`Feed`.
Per connection it does what the live gateway does:

1. greeting ``lsg_version=…`` and ``cram=<challenge>``;
2. checks the auth line (``sha256("<cram>|<key>")`` + the key's last 5 characters as bucket) against
   its keys — ``success=0|error=Authentication failed.`` and close on a mismatch;
3. reads subscription lines until ``start_session`` (recorded in :attr:`Gateway.subscriptions`);
4. sends a DBN v3 Metadata header (``schema=None``: a mixed live stream), one SystemMsg
   SUBSCRIPTION_ACK per subscription, then the feed's records: definitions (and SymbolMappingMsgs)
   first, then the data in ``ts_recv`` order with SystemMsg heartbeats wherever event time passes
   ``heartbeat_s`` without a record (the gateway's clock is the replay's event time);
5. closes the socket at the end of the feed (end of session), unless told otherwise.

:class:`Behavior` scripts failures per dataset: drop the connection (TCP reset) after N data records
and on the reconnect resume ``resume_gap_s`` of event time later (a gap); send an ErrorMsg after N
records; hold the connection open (heartbeats only) until an event is set; pace by wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import secrets
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import databento_dbn as dbn
import numba
import numpy as np

TEST_KEY = "db-" + "T" * 24 + "QZXJW"   # 32 characters; bucket id "QZXJW"
SEND_BYTES = 256 * 1024

SYSTEM_DTYPE = np.dtype(dbn.SystemMsg._dtypes)
ERROR_DTYPE = np.dtype(dbn.ErrorMsg._dtypes)
MAPPING_DTYPE = np.dtype(dbn.SymbolMappingMsg._dtypes)


def system_records(ts: np.ndarray, text: str, code: dbn.SystemCode) -> np.ndarray:
    """SystemMsg records (320 B) at the given ts_event (ns)."""
    tmpl = np.frombuffer(bytes(dbn.SystemMsg(0, text, code)), dtype=SYSTEM_DTYPE)
    out = np.repeat(tmpl, len(ts))
    out["ts_event"] = np.asarray(ts, dtype=np.uint64)
    return out


def heartbeats(ts: np.ndarray) -> np.ndarray:
    return system_records(ts, "Heartbeat", dbn.SystemCode.HEARTBEAT)


def error_record(ts: int, text: str) -> bytes:
    return bytes(dbn.ErrorMsg(int(ts), text, is_last=True, code=dbn.ErrorCode.INTERNAL_ERROR))


def mapping_records(raw_symbols: Sequence[str], ids: Sequence[int], ts: int) -> np.ndarray:
    recs = [bytes(dbn.SymbolMappingMsg(0, int(i), int(ts), dbn.SType.RAW_SYMBOL, s, dbn.SType.INSTRUMENT_ID, str(int(i)),
                                       int(ts), int(ts))) for s, i in zip(raw_symbols, ids)]
    return np.frombuffer(b"".join(recs), dtype=MAPPING_DTYPE) if recs else np.zeros(0, MAPPING_DTYPE)


def _ts_of(arr: np.ndarray) -> np.ndarray:
    name = "ts_recv" if "ts_recv" in arr.dtype.names else "ts_event"
    return arr[name].astype(np.int64)


@numba.njit(cache=True)
def _scatter(out, offs, raw, size):  # pragma: no cover - compiled
    for i in range(offs.shape[0]):
        o = offs[i]
        for b in range(size):
            out[o + b] = raw[i, b]


@dataclass
class Feed:
    """The records a gateway streams for one dataset: ``buf`` holds them back to back in send order.

    ``ts`` (ns) is each record's index timestamp (ts_recv, or ts_event for system records),
    ``offsets`` its byte offset, ``is_data`` marks market-data records (trades / mbp-10, what
    :class:`Behavior` counts). The first ``n_head`` records (definitions, mappings) precede the data.
    """

    dataset: str
    buf: np.ndarray        # uint8
    offsets: np.ndarray    # int64, len n + 1
    ts: np.ndarray         # int64
    is_data: np.ndarray    # bool
    n_head: int
    start_ns: int

    @property
    def records(self) -> int:
        return int(self.ts.shape[0])

    @classmethod
    def build(cls, dataset: str, *, head: Sequence[np.ndarray] = (), data: Sequence[np.ndarray] = (),
              heartbeat_s: float | None = 10.0, since_ns: int | None = None, until_ns: int | None = None) -> "Feed":
        """``head`` arrays are sent first in the given order; ``data`` arrays are merged by ts_recv
        (stable, ties in list order) with heartbeats every ``heartbeat_s`` of event time without a
        record (from ``since_ns`` and up to ``until_ns``, if given)."""
        data = [np.ascontiguousarray(a) for a in data if a.shape[0]]
        head = [np.ascontiguousarray(a) for a in head if a.shape[0]]
        dts = [_ts_of(a) for a in data]
        if heartbeat_s and (dts or (since_ns is not None and until_ns is not None)):
            all_ts = np.sort(np.concatenate(dts), kind="stable") if dts else np.zeros(0, np.int64)
            if since_ns is not None:
                all_ts = np.insert(all_ts, 0, np.int64(since_ns))
            if until_ns is not None:
                all_ts = np.append(all_ts, np.int64(until_ns))
            step = int(round(heartbeat_s * 1e9))
            gaps = np.diff(all_ts)
            hb = [prev + step * np.arange(1, (g - 1) // step + 1, dtype=np.int64)
                  for prev, g in zip(all_ts[:-1].tolist(), gaps.tolist()) if g > step]
            if hb:
                hbs = np.concatenate(hb)
                data.append(heartbeats(hbs))
                dts.append(hbs)
        parts = head + data
        sizes = np.array([p.dtype.itemsize for p in parts], dtype=np.int64)
        lens = [p.shape[0] for p in parts]
        part_id = np.concatenate([np.full(n, k, np.int64) for k, n in enumerate(lens)]) if parts else np.zeros(0, np.int64)
        idx = np.concatenate([np.arange(n, dtype=np.int64) for n in lens]) if parts else np.zeros(0, np.int64)
        n_head_parts = len(head)
        head_key = np.where(part_id < n_head_parts, 0, 1)
        ts_all = np.concatenate([_ts_of(p) for p in head] + dts) if parts else np.zeros(0, np.int64)
        sort_ts = np.where(head_key == 0, np.int64(np.iinfo(np.int64).min), ts_all)
        order = np.lexsort((idx, part_id, sort_ts, head_key))
        rec_sizes = sizes[part_id[order]] if parts else np.zeros(0, np.int64)
        offsets = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(rec_sizes, out=offsets[1:])
        buf = np.empty(int(offsets[-1]), dtype=np.uint8)
        where = np.empty(len(order), dtype=np.int64)
        where[order] = np.arange(len(order))
        for k, p in enumerate(parts):
            sel = np.flatnonzero(part_id == k)
            out_pos = offsets[where[sel]]
            raw = p.view(np.uint8).reshape(p.shape[0], p.dtype.itemsize)
            _scatter(buf, out_pos, raw, int(sizes[k]))  # sel is in part order: record r of part k at out_pos[r]
        is_data_part = np.array([k >= n_head_parts and p.dtype.itemsize in (48, 368) for k, p in enumerate(parts)])
        is_data = is_data_part[part_id[order]] if parts else np.zeros(0, bool)
        n_head = int(sum(lens[:n_head_parts]))
        ts_sorted = ts_all[order]
        data_ts = ts_sorted[n_head:]
        start = int(data_ts[0]) if data_ts.shape[0] else (int(ts_sorted[0]) if ts_sorted.shape[0] else 0)
        return cls(dataset, buf, offsets, ts_sorted, is_data, n_head, start)

    def save(self, path: str | Path) -> None:
        np.savez(path, buf=self.buf, offsets=self.offsets, ts=self.ts, is_data=self.is_data,
                 meta=np.array([self.n_head, self.start_ns], dtype=np.int64), dataset=np.array(self.dataset))

    @classmethod
    def load(cls, path: str | Path) -> "Feed":
        z = np.load(path)
        n_head, start = (int(v) for v in z["meta"])
        return cls(str(z["dataset"]), z["buf"], z["offsets"], z["ts"], z["is_data"], n_head, start)


@dataclass
class Behavior:
    """Scripted behaviour of the connections of one dataset (all optional)."""

    drop_after: int | None = None          # first connection: TCP reset after this many data records
    resume_gap_s: float = 0.0              # reconnection resumes at the first record >= drop ts + this
    refuse_reconnects: int = 0             # after a drop, refuse this many connection attempts ("unavailable")
    error_after: int | None = None         # send an ErrorMsg after this many data records, then close
    error_text: str = "Internal error: simulated gateway failure"
    hold: threading.Event | None = None    # after the feed, keep the connection open until this is set
    speed: float | None = None             # event seconds per wall second (None = as fast as possible)


@dataclass
class Gateway:
    """The test gateway; ``with Gateway(feeds) as gw:`` serves on ``127.0.0.1:gw.port``."""

    feeds: dict[str, Feed]
    keys: Sequence[str] = (TEST_KEY,)
    behaviors: dict[str, Behavior] = field(default_factory=dict)
    port: int = 0
    connections: dict[str, int] = field(default_factory=dict)
    auth_lines: list[str] = field(default_factory=list)
    subscriptions: dict[str, list[str]] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)     # records sent per dataset
    dropped_at: dict[str, int] = field(default_factory=dict)   # ts of the last record before a drop
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.AbstractServer | None = None
    _resume: dict[str, int] = field(default_factory=dict)
    _refused: dict[str, int] = field(default_factory=dict)
    _writers: set = field(default_factory=set)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Gateway":
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name="test-gateway", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> "Gateway":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run in the calling thread (subprocess mode)."""
        async def main() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]
            print(self.port, flush=True)
            await self._server.serve_forever()

        asyncio.run(main())

    # ------------------------------------------------------------------ protocol
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._session(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cram = secrets.token_urlsafe(24)[:32]
        writer.write(b"lsg_version=0.0.1-spymaster-test\n" + f"cram={cram}\n".encode())
        await writer.drain()
        line = (await reader.readline()).decode().rstrip("\n")
        self.auth_lines.append(line)
        auth = dict(t.partition("=")[::2] for t in line.split("|"))
        resp, _, bucket = auth.get("auth", "").rpartition("-")
        ok = any(k[-5:] == bucket and hashlib.sha256(f"{cram}|{k}".encode()).hexdigest() == resp for k in self.keys)
        dataset = auth.get("dataset", "")
        feed = self.feeds.get(dataset)
        if not ok or feed is None:
            err = "Authentication failed." if not ok else f"Unknown dataset {dataset}"
            writer.write(f"success=0|error={err}\n".encode())
            await writer.drain()
            writer.close()
            return
        beh = self.behaviors.get(dataset, Behavior())
        n_conn = self.connections.get(dataset, 0)
        self.connections[dataset] = n_conn + 1
        if dataset in self._resume and self._refused.get(dataset, 0) < beh.refuse_reconnects:
            self._refused[dataset] = self._refused.get(dataset, 0) + 1
            writer.write(b"success=0|error=Gateway unavailable, retry later\n")
            await writer.drain()
            writer.close()
            return
        writer.write(f"success=1|session_id={1000 + n_conn}\n".encode())
        await writer.drain()
        subs: list[str] = []
        while True:
            raw = await reader.readline()
            if not raw:
                return
            text = raw.decode().rstrip("\n")
            if text.startswith("start_session"):
                break
            subs.append(text)
        self.subscriptions.setdefault(dataset, []).extend(subs)
        await self._stream(writer, feed, beh, subs, first=(n_conn == 0))

    async def _stream(self, writer: asyncio.StreamWriter, feed: Feed, beh: Behavior, subs: list[str],
                      first: bool) -> None:
        lo = 0
        if not first and feed.dataset in self._resume:
            lo = self._resume.pop(feed.dataset)
        start_ts = int(feed.ts[lo]) if lo < feed.records and lo > 0 else feed.start_ns
        md = dbn.Metadata(feed.dataset, start_ts, None, dbn.SType.INSTRUMENT_ID, None, ts_out=False)
        ids = sorted({t.partition("id=")[2].split("|")[0] for t in subs if "id=" in t})
        acks = b"".join(bytes(dbn.SystemMsg(start_ts, f"Subscription request {i} succeeded", dbn.SystemCode.SUBSCRIPTION_ACK))
                        for i in ids)
        writer.write(md.encode() + acks)
        if lo > 0:  # a reconnection: the definitions again, then the data after the gap
            writer.write(feed.buf[: feed.offsets[feed.n_head]].tobytes())
            lo = max(lo, feed.n_head)
        starts = [int(t.partition("start=")[2].split("|")[0]) for t in subs if "start=" in t]
        if first and starts:  # intraday replay from ``start``: definitions, then data with ts >= start
            k = feed.n_head + int(np.searchsorted(feed.ts[feed.n_head:], min(starts), side="left"))
            if k > feed.n_head:
                writer.write(feed.buf[: feed.offsets[feed.n_head]].tobytes())
                lo = k
        stop_at = feed.records
        action, limit = None, None
        if first and beh.drop_after is not None:
            action, limit = "drop", beh.drop_after
        elif beh.error_after is not None:
            action, limit = "error", beh.error_after
        if limit is not None:
            hit = int(np.searchsorted(np.cumsum(feed.is_data), limit, side="left"))  # index of the limit-th data record
            if hit < feed.records:
                stop_at = hit + 1
            else:
                action = None if action == "drop" else action
        t_wall0, t_ev0 = time.monotonic(), None
        i = lo
        while i < stop_at:
            j = min(stop_at, int(np.searchsorted(feed.offsets, feed.offsets[i] + SEND_BYTES, side="right")) - 1)
            j = max(j, i + 1)
            if beh.speed and i >= feed.n_head:
                if t_ev0 is None:
                    t_ev0 = int(feed.ts[i])
                due = t_wall0 + (int(feed.ts[j - 1]) - t_ev0) / 1e9 / beh.speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            writer.write(feed.buf[feed.offsets[i]: feed.offsets[j]].tobytes())
            self.sent[feed.dataset] = self.sent.get(feed.dataset, 0) + (j - i)
            await writer.drain()
            i = j
        last_ts = int(feed.ts[stop_at - 1]) if stop_at > 0 else feed.start_ns
        if action == "drop":
            resume_ts = last_ts + int(round(beh.resume_gap_s * 1e9))
            self._resume[feed.dataset] = int(np.searchsorted(feed.ts, resume_ts, side="left"))
            self.dropped_at[feed.dataset] = last_ts
            await asyncio.sleep(0.3)        # let the client read what was sent: a reset discards unread data
            _reset(writer)
            return
        if action == "error":
            writer.write(error_record(last_ts, beh.error_text))
            await writer.drain()
            writer.close()
            return
        if beh.hold is not None:
            while not beh.hold.is_set():
                writer.write(bytes(dbn.SystemMsg(last_ts, "Heartbeat", dbn.SystemCode.HEARTBEAT)))
                await writer.drain()
                await asyncio.sleep(0.2)
        await writer.drain()
        writer.close()


def feeds_from_lake(lake, date, *, heartbeat_s: float | None = 10.0) -> dict[str, Feed]:
    """The session's Bronze DBN files as two feeds (GLBX.MDP3, OPRA.PILLAR): every definition file of
    the session's UTC days first (day order, file order, with a SymbolMappingMsg per ES definition),
    then every trades / mbp-10 record in ts_recv order with heartbeats from the session start to the
    last record (as a gateway replaying the session from its start would send them; none after the
    last record: event time must not pass the data's end, or labels the files leave incomplete would
    complete)."""
    from spymaster.calendar import session_for
    from spymaster.sources.dbn import read_dbn
    from spymaster.sources.lake import GLBX, OPRA

    session = session_for(date)
    days = session.utc_days()

    def load(ds_dir: str, schema: str) -> list[np.ndarray]:
        out = []
        for d in days:
            p = lake.find_bronze(ds_dir, schema, d)
            if p is not None:
                chunks = list(read_dbn(p, schema, 1_000_000))
                if chunks:
                    out.append(np.concatenate(chunks))
        return out

    feeds = {}
    es_defs = load(GLBX, "definition")
    maps = [mapping_records([r.decode() for r in a["raw_symbol"].tolist()], a["instrument_id"].tolist(),
                            int(a["ts_recv"][0])) for a in es_defs if a.shape[0]]
    glbx_data = [np.concatenate(x) for x in (load(GLBX, "trades"), load(GLBX, "mbp-10")) if x]
    feeds["GLBX.MDP3"] = Feed.build("GLBX.MDP3", head=es_defs + maps, data=glbx_data, heartbeat_s=heartbeat_s,
                                    since_ns=session.start_ns)
    opra_data = load(OPRA, "trades")
    feeds["OPRA.PILLAR"] = Feed.build("OPRA.PILLAR", head=load(OPRA, "definition"),
                                      data=[np.concatenate(opra_data)] if opra_data else [], heartbeat_s=heartbeat_s,
                                      since_ns=session.start_ns)
    return feeds


def _reset(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP reset (SO_LINGER 0), as a network failure does (a plain close
    is a clean end of session for the client)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def main(argv: list[str] | None = None) -> None:
    """``python tests/gateway.py [FEED.npz ...] [--lake DIR --date D] [--port N]``: serve saved feeds or
    a lake's session; prints the port once listening."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("feeds", nargs="*", help="saved feeds (Feed.save)")
    ap.add_argument("--lake", help="serve this lake's Bronze files of --date (feeds_from_lake)")
    ap.add_argument("--date", help="trading date for --lake")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    feeds = {f.dataset: f for f in (Feed.load(p) for p in args.feeds)}
    if args.lake:
        from spymaster.sources.lake import Lake

        feeds.update(feeds_from_lake(Lake.at(args.lake), args.date))
    Gateway(feeds, port=args.port).serve_forever()


if __name__ == "__main__":
    sys.exit(main())


def run_live(config, date, feeds: dict[str, Feed], *, behaviors: dict[str, Behavior] | None = None,
             start_ns: int | None = None, **runner_kwargs):
    """Serve ``feeds`` on a fresh gateway and run a :class:`spymaster.cli.live.LiveRunner` against it
    (``DATABENTO_API_KEY`` must be set); returns (runner, result or the LiveError raised, gateway)."""
    from spymaster.calendar import session_for
    from spymaster.cli.live import LiveRunner
    from spymaster.errors import LiveError

    if start_ns is None:
        start_ns = session_for(date).start_ns + 1
    with Gateway(feeds, behaviors=behaviors or {}) as gw:
        runner = LiveRunner(config, date, gateway="127.0.0.1", port=gw.port, start_ns=start_ns,
                            install_signals=False, **runner_kwargs)
        try:
            res = runner.run()
        except LiveError as exc:
            res = exc
    return runner, res, gw
