"""The command line's start-up: ``import kscc_traffic`` is light (the public names are loaded on
first use, PEP 562) and a Ctrl-C or SIGTERM at any moment of the start-up ends the run with
status 130 and one ``Interrupted`` line, never a traceback (break-it 17 N3: during the ~0.5-2 s
of imports it gave a KeyboardInterrupt traceback, status -2, or no word at all, -15)."""
from __future__ import annotations

import ast
import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import kscc_traffic
from conftest import ROOT

SAMPLE = ROOT / "samples" / "captures" / "blocked_agent.pcap"

#: where each public name lived when the package imported everything at once (before the lazy
#: ``__init__``): each name must still be that object
HOME = {
    **dict.fromkeys(("COLUMNS", "Analysis", "analyze", "analyze_file", "analyze_files", "read_flows"),
                    "kscc_traffic.analyze"),
    "decode": "kscc_traffic.capture.decode",
    "read_frames": "kscc_traffic.capture.files",
    "classify": "kscc_traffic.classify",
    **dict.fromkeys(("CaptureError", "CaptureWarning", "CorruptCapture", "EngineError", "KsccTrafficError",
                     "RulesError", "TruncatedCapture", "UnsupportedFormat"), "kscc_traffic.errors"),
    **dict.fromkeys(("FLOW_COLUMNS", "build_flows"), "kscc_traffic.flows"),
    **dict.fromkeys(("attempts_over_time", "chart_host_failures", "chart_timeline", "chart_verdicts",
                     "chart_volume", "host_status", "purpose_breakdown", "server_names", "style_readiness",
                     "style_table"),
                    "kscc_traffic.plots"),
    **dict.fromkeys(("readiness", "dns_advice"), "kscc_traffic.report"),
    **dict.fromkeys(("RuleSet", "load_rules"), "kscc_traffic.rules"),
}

#: what the command line must not import before a command needs it
HEAVY = ("pandas", "numpy", "pyarrow", "pydantic", "matplotlib", "scapy", "cryptography")


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONWARNINGS", None)
    return env


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (this tree first on the path); its standard output."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=_env(), cwd=ROOT.parent,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


# --- the lazy package ------------------------------------------------------------------------------

def test_public_names_are_the_objects_of_their_modules():
    assert set(kscc_traffic.__all__) == set(HOME)
    for name in kscc_traffic.__all__:
        assert getattr(kscc_traffic, name) is getattr(importlib.import_module(HOME[name]), name), name
    assert set(kscc_traffic.__all__) <= set(dir(kscc_traffic))
    assert callable(kscc_traffic.analyze) and callable(kscc_traffic.classify)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        kscc_traffic.no_such_name


def test_public_names_in_a_fresh_interpreter_whatever_is_imported_first():
    """``kscc_traffic.analyze``/``classify`` are the functions, as with the eager ``__init__``,
    also when their modules are imported first (which binds a submodule on its package); the
    other submodules are still reachable as before."""
    out = _python("""
        import importlib, sys
        import kscc_traffic
        print(sorted(set(sys.modules) & {'pandas', 'numpy', 'pyarrow', 'pydantic', 'matplotlib'}))
        import kscc_traffic.analyze
        import kscc_traffic.classify as c
        from kscc_traffic.classify import classify
        print(kscc_traffic.analyze is sys.modules['kscc_traffic.analyze'].analyze, c is classify,
              kscc_traffic.classify is classify)
        from kscc_traffic import analyze, report
        print(analyze is kscc_traffic.analyze, report is sys.modules['kscc_traffic.report'])
        print(sorted(n for n in kscc_traffic.__all__ if n not in dir(kscc_traffic)))
        from kscc_traffic import __version__; print(__version__)
    """)
    assert out.splitlines() == ["[]", "True True True", "True True", "[]", kscc_traffic.__version__]


def test_type_checking_imports_name_the_same_homes():
    """What type checkers and IDEs read (the ``if TYPE_CHECKING:`` imports) and what is loaded
    at run time (``_LAZY``) agree with each other and with :data:`HOME`."""
    tree = ast.parse((ROOT / "kscc_traffic" / "__init__.py").read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {a.name: "kscc_traffic." + imp.module for imp in block.body for a in imp.names}
    lazy = {n: "kscc_traffic" + m for n, m in kscc_traffic._LAZY.items()}
    errors = {n: m for n, m in HOME.items() if m == "kscc_traffic.errors"}
    assert seen == lazy == {n: m for n, m in HOME.items() if n not in errors}


def test_the_command_line_imports_nothing_heavy_before_a_command_needs_it():
    out = _python("""
        import sys
        import kscc_traffic.__main__, kscc_traffic.cli
        heavy = %r
        print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))
    """ % (HEAVY,))
    assert out.strip() == "[]"
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "kscc_traffic", "--version"], env=_env(),
                       cwd=ROOT.parent, capture_output=True, text=True, timeout=120)
    from kscc_traffic.compiled import summary
    # (the compiled parts' line too: importing the seven C modules loads nothing heavy)
    assert r.returncode == 0 and r.stdout == f"kscc-traffic {kscc_traffic.__version__}\n{summary()}\n"
    imported = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert not {m for m in imported if m.split(".")[0] in HEAVY}


# --- signals during the start-up -------------------------------------------------------------------

#: the two ways the command line starts: ``python -m kscc_traffic`` and the console script
#: (``kscc_traffic.__main__:main``, here run as its generated script does)
ENTRIES = {
    "module": ["-m", "kscc_traffic"],
    "script": ["-c", "import sys; from kscc_traffic.__main__ import main; sys.exit(main())"],
}

#: imported by Python's site at the end of its own start-up: says so on the descriptor given
SITECUSTOMIZE = """
import os
fd = os.environ.pop("KSCC_TEST_STARTED_FD", None)
if fd is not None:
    os.write(int(fd), b"started")
    os.close(int(fd))
"""


def _signal_at(entry: str, sig: int, delay: float, tmp_path, **popen):
    """Start ``analyze SAMPLE`` by ``entry``, send ``sig`` ``delay`` seconds after Python's own
    start-up is done (the site-packages' .pth files included, ~50 ms here, with Python's own
    handling of signals: a ``sitecustomize`` module tells when), and return (status, stdout,
    stderr). The few milliseconds from there to the handlers being in place (runpy finding the
    package, its ``__init__``) are the part of the start-up left to Python's handling."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    work = tmp_path / "cwd"
    work.mkdir()
    r, w = os.pipe()
    env = dict(_env(), PYTHONPATH=f"{hook}{os.pathsep}{ROOT}", KSCC_TEST_STARTED_FD=str(w))
    try:
        p = subprocess.Popen([sys.executable, *ENTRIES[entry], "analyze", str(SAMPLE)], env=env, cwd=work,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(w,), **popen)
    finally:
        os.close(w)
    try:
        with os.fdopen(r, "rb") as started:
            assert started.read() == b"started", "the interpreter did not start"
        time.sleep(delay)
        p.send_signal(sig)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert sorted(x.name for x in work.iterdir()) == []
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


@pytest.mark.parametrize("entry,delay", [("module", 0.05), ("module", 0.1), ("module", 0.2), ("module", 0.5),
                                         ("script", 0.05), ("script", 0.2)])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_startup_ends_with_130_and_one_line(entry, delay, sig, tmp_path):
    """Status 130 and one ``Interrupted`` line (bare, or saying what became of the report when
    the analysis had begun), for SIGTERM too as for Ctrl-C (the README's exit status); or, on
    a machine fast enough to finish first, the complete run (status 1: the sample has blocked
    flows)."""
    rc, out, err = _signal_at(entry, sig, delay, tmp_path)
    assert "Traceback" not in err, err
    if rc == 1:                                   # finished before the signal
        assert err == "" and "11 flows: 4 ok, 7 blocked" in out
        return
    assert err == "Interrupted\n" or (err.startswith("Interrupted: ") and err.count("\n") == 1), err
    # once the analysis has begun (the line says what became of the report) a KeyboardInterrupt
    # that went through a string exec (a dataclass being made, ...) ends `python -m` killed by
    # SIGINT whatever status the program gave (CPython's unhandled_keyboard_interrupt flag;
    # a shell reports 130 all the same); the console script is not concerned
    late = entry == "module" and err.startswith("Interrupted: ")
    assert rc == 130 or (late and rc == -signal.SIGINT), (rc, err)


def test_a_signal_ignored_at_start_stays_ignored(tmp_path):
    """A run started with SIGINT ignored (``cmd &`` in a script, ``nohup``-like parents) is
    not stopped by it, as Python itself leaves it ignored."""
    rc, out, err = _signal_at("module", signal.SIGINT, 0.05, tmp_path,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert (rc, err) == (1, "") and "11 flows: 4 ok, 7 blocked" in out


def test_main_says_interrupted_when_a_command_stops_without_a_word(monkeypatch, capsys):
    """A KeyboardInterrupt before a command's own handling (typer ends it with status 130 and
    no word): :func:`kscc_traffic.cli.main` writes the one ``Interrupted`` line."""
    from kscc_traffic import cli

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_capture_paths", stop)
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(SystemExit) as e:
            cli.main(["analyze", str(SAMPLE)])
        # a caller in this process gets Python's Ctrl-C back (not the start-up's exit at once)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    assert e.value.code == 130
    assert capsys.readouterr().err == "Interrupted\n"


# --- signals once the command has ended --------------------------------------------------------------

#: the console script's way in, with a signal sent to itself after the command has ended: while
#: its SystemExit goes out (``finally``), or from an ``atexit`` callback registered before the
#: command line's (so called after it), i.e. in Python's teardown
ENDED = {
    "exiting": """
        import os, signal, sys, time
        from kscc_traffic.__main__ import main
        try:
            main()
        finally:
            os.kill(os.getpid(), signal.{sig})
            time.sleep(2)
        """,
    "teardown": """
        import atexit, os, signal, sys, time
        atexit.register(lambda: (os.kill(os.getpid(), signal.{sig}), time.sleep(0.5)))
        from kscc_traffic.__main__ import main
        main()
        """,
}


@pytest.mark.parametrize("when", sorted(ENDED))
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_after_the_command_ended_keeps_its_status_and_output(when, sig, tmp_path):
    """A signal that comes once the report is written (the run's end, ~1 of 60 times for a
    signal sent 0.5-1.1 s into a 1 s run) ends the process with the command's own status and
    its complete output: before, it raised a KeyboardInterrupt (a traceback), or killed the
    process after Python gave the signals back to their defaults (status -15, no word)."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(ENDED[when]).format(sig=sig), "analyze", str(SAMPLE)],
                       env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stderr) == (1, "")
    assert "11 flows: 4 ok, 7 blocked" in r.stdout


def test_a_signal_after_the_command_ended_flushes_what_it_printed(tmp_path):
    """The phase-3 handler ends the process at once: what the command printed (to a pipe, so
    held in Python's buffer) is flushed first. ``--version`` prints two short lines and ends."""
    code = """
        import os, signal, sys
        from kscc_traffic.__main__ import main
        try:
            main()
        finally:
            sys.stdout.write("not flushed yet")
            os.kill(os.getpid(), signal.SIGINT)
            sys.stdout.write(" (never written: the handler has ended the process)")
        """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code), "--version"], env=_env(), cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stderr) == (0, "")
    from kscc_traffic.compiled import summary
    assert r.stdout == f"kscc-traffic {kscc_traffic.__version__}\n{summary()}\nnot flushed yet"
