"""The step-through debugger (``spymaster debug``): the replay engine, one event or one stop at a time.

* :mod:`spymaster.debug.stepper` — :class:`~spymaster.debug.stepper.Stepper`, the controller
  (moves, breakpoints, state queries) over :class:`~spymaster.replay.engine.ReplayEngine`;
* :mod:`spymaster.debug.views` — the text views (book, levels, tape, fuel, bar, touch …);
* :mod:`spymaster.debug.shell` — the command shell (terminal or scripted stdin).

See the README's "Step-through debugger" section for the commands and the choices made.
"""
