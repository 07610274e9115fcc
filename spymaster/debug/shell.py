"""The debugger's command shell over a :class:`~spymaster.debug.stepper.Stepper`.

Reads one command per line — from a terminal (prompt, readline history) or from a script on
stdin (no prompt; each command is echoed as ``> command`` so a transcript reads well) — and
prints through the ``out`` callable it is given (the CLI passes ``click.echo``). A command that
cannot be carried out prints ``error: …`` and the shell goes on; :meth:`Shell.run` returns how
many commands failed (the CLI exits non-zero in scripted mode if any did). Errors in the data
itself (a corrupt file met while stepping) are not caught: they end the session.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Callable, Iterable

from spymaster.debug import views
from spymaster.debug.stepper import DebugError, Stepper, fmt_clock, parse_et_time

HELP = """\
moving (times are ET of the session's date; a time after 17:00 means the evening before it):
  step [N]                 apply the next N events (default 1; 10k, 1m accepted); ignores breakpoints
  until HH:MM[:SS[.f]]     run until event time reaches that time (bars ending by then closed)
  next [touch] [KIND]      run to the next bar close that emits a touch (of that level kind)
  continue                 run to the next breakpoint, or to the end of data
  finish                   run to the end of data ignoring breakpoints; summary of the table
  (until / next / continue stop at breakpoints; at the end of data the replay finishes as replay does)
breakpoints:
  break KIND|LEVEL_ID|HH:MM[:SS]|touch   stop at touches of a level kind (ROUND, PM_HIGH ...), of one
                           level (ROUND@680.00, STRIKE@681), of any level, or when time reaches HH:MM
  break                    list breakpoints (also: info break)
  delete [N]               delete breakpoint N (all without N; also: clear)
looking (state as of now: every applied event has an earlier ts_recv):
  where                    events applied, time, next event, counts (also: info, status)
  book                     the current committed 10-level ES MBP-10 book
  levels                   levels testable on the open bar, with their values (SPY $ and ES points)
  tape [N]                 the last N ES trades (10) and the tape features of the levels near price
  fuel [all]               basis, spot, dealer gamma, walls, flip, per-contract volume / q / IV
  bar                      the open 1-min bar and the last closed one
  touch [#K|EVENT_ID|LEVEL_ID]   every Gold column of the touch the run stopped at, else of the
                           last touch (or of the one named: #K of the day, event_id, level_id)
  touches [N]              the last N touches (20)
  help                     this text
  quit                     leave (also: exit, q, end of input)"""

ALIASES = {"s": "step", "c": "continue", "cont": "continue", "n": "next", "u": "until", "b": "break",
           "d": "delete", "clear": "delete", "q": "quit", "exit": "quit", "h": "help", "?": "help",
           "info": "where", "status": "where", "w": "where", "bars": "bar", "run": "continue"}
MOVES = ("step", "until", "next", "continue", "finish")


def parse_count(text: str) -> int:
    """``100``, ``10_000``, ``10,000``, ``10k``, ``2m`` → int."""
    t = text.strip().lower().replace("_", "").replace(",", "")
    mult = 1
    if t.endswith("k"):
        mult, t = 1_000, t[:-1]
    elif t.endswith("m"):
        mult, t = 1_000_000, t[:-1]
    try:
        v = float(t) * mult if mult != 1 else int(t)
    except ValueError:
        raise DebugError(f"not a count: {text!r}") from None
    if v != int(v):
        raise DebugError(f"not a whole count: {text!r}")
    return int(v)


class Shell:
    """Parses and runs debugger commands against a stepper."""

    def __init__(self, stepper: Stepper, out: Callable[[str], None]) -> None:
        self.st = stepper
        self.out = out
        self.errors = 0
        self.last_move: str | None = None

    # ---------------------------------------------------------------------------- running
    def execute(self, line: str) -> bool:
        """Run one command line; False when the shell should end (quit)."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        try:
            words = shlex.split(line)
        except ValueError as exc:
            return self._error(f"cannot parse {line!r}: {exc}")
        cmd, args = words[0].lower(), words[1:]
        cmd = ALIASES.get(cmd, cmd)
        if cmd == "quit":
            return False
        handler = getattr(self, f"do_{cmd}", None)
        if handler is None:
            return self._error(f"unknown command {words[0]!r} (type 'help')")
        try:
            text = handler(args)
        except DebugError as exc:
            return self._error(str(exc))
        if cmd in MOVES:
            self.last_move = line
        if text:
            self.out(text)
        return True

    def _error(self, msg: str) -> bool:
        self.errors += 1
        self.out(f"error: {msg}")
        return True

    def run(self, lines: Iterable[str], *, echo: bool = True) -> int:
        """Run commands from an iterable of lines (a script); echo each one as ``> line``."""
        for raw in lines:
            line = raw.rstrip("\n")
            if echo and line.strip():
                self.out(f"> {line.strip()}")
            if not self.execute(line):
                break
        return self.errors

    def interactive(self, history: Path | None = None) -> int:
        """A terminal loop: prompt with the current time, readline editing and history if available;
        an empty line repeats the last move."""
        try:
            import readline  # noqa: F401  (line editing for input())
        except ImportError:  # pragma: no cover - platform without readline
            readline = None
        if readline is not None and history is not None:
            try:
                readline.read_history_file(str(history))
            except OSError:
                pass
        try:
            while True:
                t = self.st.now_ns
                when = "start" if t is None else fmt_clock(t, self.st.session, digits=3)[:-3]
                try:
                    line = input(f"(spymaster {when}) ")
                except EOFError:
                    self.out("")
                    break
                except KeyboardInterrupt:
                    self.out("")
                    continue
                if not line.strip() and self.last_move is not None:
                    line = self.last_move
                if not self._execute_interruptible(line):
                    break
        finally:
            if readline is not None and history is not None:
                try:
                    readline.write_history_file(str(history))
                except OSError:
                    pass
        return self.errors

    def _execute_interruptible(self, line: str) -> bool:
        """:meth:`execute` with Ctrl-C stopping a running move at the next slice boundary (the
        engine only ever sees whole slices, so its state stays consistent) instead of ending the shell."""
        import signal

        def on_sigint(signum, frame) -> None:
            self.st.interrupted = True

        try:
            old = signal.signal(signal.SIGINT, on_sigint)
        except ValueError:  # not the main thread: no handler, Ctrl-C behaves as usual
            return self.execute(line)
        try:
            return self.execute(line)
        finally:
            signal.signal(signal.SIGINT, old)

    # ---------------------------------------------------------------------------- moves
    def _move(self, stop) -> str:
        return views.stop_report(stop, self.st)

    def do_step(self, args: list[str]) -> str:
        return self._move(self.st.step(self._positive(args, 1)))

    def do_until(self, args: list[str]) -> str:
        if not args:
            raise DebugError("until needs a time: HH:MM[:SS[.fff]] (ET)")
        return self._move(self.st.until(parse_et_time(" ".join(args), self.st.session)))

    def do_next(self, args: list[str]) -> str:
        if args and args[0].lower() == "touch":
            args = args[1:]
        if len(args) > 1:
            raise DebugError("usage: next [touch] [KIND]")
        return self._move(self.st.next_touch(args[0] if args else None))

    def do_continue(self, args: list[str]) -> str:
        return self._move(self.st.cont())

    def do_finish(self, args: list[str]) -> str:
        if self.st.finished:
            raise DebugError("end of data: the replay is already finished")
        a0 = self.st.applied
        table = self.st.finish()
        stats = self.st.engine.stats
        return (f"applied {self.st.applied - a0:,} events to the end of data; replay finished: {table.num_rows} "
                f"touch rows, {stats.labels_complete} labels complete, {stats.labels_incomplete} incomplete")

    # ---------------------------------------------------------------------------- breakpoints
    def do_break(self, args: list[str]) -> str:
        if not args:
            return views.breaks_view(self.st)
        n0 = len(self.st.breakpoints)
        bp = self.st.add_break(" ".join(args))
        verb = "breakpoint" if len(self.st.breakpoints) > n0 else "already set: breakpoint"
        return f"{verb} {bp.number}: {bp.describe(self.st.session)}"

    def do_delete(self, args: list[str]) -> str:
        if not args:
            gone = self.st.delete_break(None)
            return f"deleted {len(gone)} breakpoint{'s' if len(gone) != 1 else ''}"
        out = []
        for a in args:
            try:
                num = int(a)
            except ValueError:
                raise DebugError(f"not a breakpoint number: {a!r}") from None
            for bp in self.st.delete_break(num):
                out.append(f"deleted breakpoint {bp.number}: {bp.describe(self.st.session)}")
        return "\n".join(out)

    # ---------------------------------------------------------------------------- looking
    def do_where(self, args: list[str]) -> str:
        if args and args[0].lower() in ("break", "breakpoints", "b"):
            return views.breaks_view(self.st)
        return views.status(self.st)

    def _need_state(self) -> None:
        if self.st.last_event is None:
            raise DebugError("nothing applied yet: step or run first")

    def do_book(self, args: list[str]) -> str:
        self._need_state()
        return views.book_view(self.st)

    def do_levels(self, args: list[str]) -> str:
        self._need_state()
        return views.levels_view(self.st)

    def do_tape(self, args: list[str]) -> str:
        self._need_state()
        return views.tape_view(self.st, self._positive(args, 10))

    def do_fuel(self, args: list[str]) -> str:
        self._need_state()
        return views.fuel_view(self.st, all_contracts=bool(args) and args[0].lower() == "all")

    def do_bar(self, args: list[str]) -> str:
        self._need_state()
        return views.bar_view(self.st)

    def do_touch(self, args: list[str]) -> str:
        row = self.st.find_touch(args[0]) if args else self.st.last_touch()
        if row is None:
            raise DebugError("no touch yet")
        return views.touch_view(row, self.st)

    def do_touches(self, args: list[str]) -> str:
        return views.touches_view(self.st, self._positive(args, 20))

    @staticmethod
    def _positive(args: list[str], default: int) -> int:
        n = parse_count(args[0]) if args else default
        if n < 1:
            raise DebugError(f"the count must be >= 1, not {n}")
        return n

    def do_help(self, args: list[str]) -> str:
        return HELP
