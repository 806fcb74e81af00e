"""Child side of `ftshim audit --import` (cli/src/audit.rs runs it with `python -I -B -c`).

Usage: python -I -B -c "$(cat import_child.py)" NAME ROOT PATH

Imports module NAME (dotted) the way a program would: ROOT (the directory its top-level package
lives in) first on sys.path, the top-level package imported first, then NAME; checks that the
module imported is the file PATH. Prints, as the last line of stdout, `FTSHIM-AUDIT <json>`: the
GIL state before the imports and after them (None before 3.13), every warning, any error and
the time the import took.
"""
import importlib, json, os, sys, time, warnings
name, root, path = sys.argv[1], sys.argv[2], sys.argv[3]
is_gil = getattr(sys, "_is_gil_enabled", None)
res = {"gil_before": is_gil() if is_gil else None, "error": None}
sys.path.insert(0, root)
t0 = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        top = name.split(".")[0]
        if top != name:
            try:
                importlib.import_module(top)
            except BaseException as e:
                raise ImportError(f"importing its package {top!r} failed: {type(e).__name__}: {e}") from e
        module = importlib.import_module(name)
        origin = getattr(module, "__file__", None)
        if origin is None or not os.path.samefile(origin, path):
            raise ImportError(f"{name} was imported from {origin}, not from {path}")
    except BaseException as e:
        res["error"] = f"{type(e).__name__}: {e}"
res["seconds"] = time.perf_counter() - t0
res["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
res["gil_after"] = is_gil() if is_gil else None
sys.stdout.flush()
sys.stdout.write("\nFTSHIM-AUDIT " + json.dumps(res) + "\n")
sys.stdout.flush()
