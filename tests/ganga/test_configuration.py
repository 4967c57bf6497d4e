"""Ganga's configuration habits: ``[defaults_<Plugin>]`` sections set plugin defaults."""

from __future__ import annotations

import os
from pathlib import Path

from gpi_script import lines, run_script


def test_defaults_sections_set_plugin_defaults_from_the_file_and_at_run_time() -> None:
    """Ganga (TestSavannah14436, the tutorial): ``[defaults_Executable] exe = ...`` in the
    configuration file, or ``config.defaults_Executable.exe = ...`` at run time, is the ``exe``
    of every ``Executable()`` built afterwards without one; an explicit field wins; a job's
    default application and backend take them too."""
    Path(os.environ["GANGA_ASYNC_CONFIG"]).write_text(
        '[defaults_Executable]\nexe = "/bin/hostname"\n\n[defaults_Local]\nmax_concurrent = 3\n')
    out = lines(run_script("""
        from ganga_async.gpi import *
        print("file:", Executable().exe, Executable(exe="/bin/ls").exe, Local().max_concurrent)
        j = Job()
        print("job:", j.application.exe, j.backend.max_concurrent)
        config["defaults_Executable"]["exe"] = "echo2"
        config.defaults_Executable.args = ["Hello World2"]
        a = Executable()
        print("runtime:", a.exe, a.args)
        config.defaults_Executable.exe = "/bin/echo"
        k = Executable()
        print("again:", k.exe, k.args)
        k.args.append("x")
        print("own list:", Executable().args)
    """))
    assert out["file"] == "/bin/hostname /bin/ls 3"
    assert out["job"] == "/bin/hostname 3"
    assert out["runtime"] == "echo2 ['Hello World2']"
    assert out["again"] == "/bin/echo ['Hello World2']"
    assert out["own list"] == "['Hello World2']"


def test_defaults_sections_refuse_unknown_plugins_options_and_wrong_types() -> None:
    """An unknown plugin, an option that is not a field of the plugin, or a value of the wrong
    type is a one-line ConfigError naming it and what is valid (Ganga refuses them too)."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        from ganga_async import ConfigError
        for name, option, value in (("defaults_Nowhere", "x", 1),
                                    ("defaults_Local", "nice", 1),
                                    ("defaults_Local", "max_concurrent", "many")):
            try:
                config[name][option] = value
            except ConfigError as exc:
                print(name, option + ":", str(exc).count("\\n"), str(exc))
    """))
    assert out["defaults_Nowhere x"].startswith("0 no configuration section [defaults_Nowhere]")
    assert "Local" in out["defaults_Nowhere x"]
    assert out["defaults_Local nice"].startswith("0 [defaults_Local] has no option 'nice'")
    assert "max_concurrent" in out["defaults_Local nice"]
    assert out["defaults_Local max_concurrent"].startswith("0 [defaults_Local] max_concurrent")
    assert "expected int" in out["defaults_Local max_concurrent"]


def test_a_bad_defaults_section_in_the_file_is_a_clear_error() -> None:
    """A mistake in a ``[defaults_...]`` section of the file is reported in one line naming
    the section and option, as any configuration mistake."""
    Path(os.environ["GANGA_ASYNC_CONFIG"]).write_text('[defaults_Executable]\nexe = 3\n')
    out = lines(run_script("""
        from ganga_async import ConfigError
        try:
            from ganga_async.gpi import *
        except ConfigError as exc:
            print("error:", str(exc).count("\\n"), str(exc))
    """))
    assert out["error"].startswith("0 [defaults_Executable] exe (from ")
    assert "expected str" in out["error"]


def test_resubmit_only_failed_subjobs_is_ganga_s_option() -> None:
    """Ganga: ``resubmit()`` of a split job resubmits its failed subjobs; with
    ``config['Configuration']['resubmitOnlyFailedSubjobs'] = False`` every subjob."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/sh"),
                splitter=ArgSplitter(args=[["-c", "exit 0"], ["-c", "exit 1"]]))
        j.submit()
        j.wait(timeout=30)
        j.resubmit()
        j.wait(timeout=30)
        print("only failed:", [s.info.submit_counter for s in j.subjobs])
        config["Configuration"]["resubmitOnlyFailedSubjobs"] = False
        j.resubmit()
        j.wait(timeout=30)
        print("all:", [s.info.submit_counter for s in j.subjobs])
    """))
    assert out["only failed"] == "[1, 2]"
    assert out["all"] == "[2, 3]"
