"""Child side of `ftshim audit --import` (cli/src/audit.rs runs it with `python -I -B -c`).

Usage: python -I -B -c "$(cat import_child.py)" NAME PATH

Loads exactly PATH as module NAME and prints, as the last line of stdout, `FTSHIM-AUDIT <json>`:
the GIL state before and after the import (None before 3.13), every warning, any error and the
time the import took.
"""
import importlib.util, json, sys, time, warnings
name, path = sys.argv[1], sys.argv[2]
is_gil = getattr(sys, "_is_gil_enabled", None)
res = {"gil_before": is_gil() if is_gil else None, "error": None}
t0 = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"no extension-module spec for {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except BaseException as e:
        res["error"] = f"{type(e).__name__}: {e}"
res["seconds"] = time.perf_counter() - t0
res["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
res["gil_after"] = is_gil() if is_gil else None
sys.stdout.flush()
sys.stdout.write("\nFTSHIM-AUDIT " + json.dumps(res) + "\n")
sys.stdout.flush()
