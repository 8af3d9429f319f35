"""The user's own model builder: ``path/to/file.py:function`` or ``package.module:function``.

This runs the user's code, on purpose and only when they name it. The function is called with no
arguments and must return a torchvision ``GeneralizedRCNN`` (FasterRCNN, MaskRCNN, KeypointRCNN or
a subclass). An error in their code is one line naming the file and line; the exception is chained
(``raise ... from``) so ``--debug`` shows their traceback.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
import sysconfig
import traceback
from pathlib import Path

from core.errors import ModelError

_CORE = str(Path(__file__).resolve().parent)
_LIBRARY = tuple(str(Path(p).resolve()) for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
                                                    sysconfig.get_paths()["platlib"]})


def is_spec(name: str | None) -> bool:
    """Whether a --model value names a builder (``X.py:f`` or ``pkg.mod:f``) rather than a preset."""
    return bool(name) and ":" in name


def parse(spec: str) -> tuple[str, str, bool]:
    """(file or module, function, is_file)."""
    target, _, func = spec.rpartition(":")
    if not target or not func.isidentifier():
        raise ModelError(spec, "expected a builder as path/to/file.py:function or package.module:function")
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    if not is_file and not all(part.isidentifier() for part in target.split(".")):
        raise ModelError(spec, "expected a builder as path/to/file.py:function or package.module:function")
    return target, func, is_file


def _where(err: BaseException, prefer: str | None) -> str:
    """'file:line' of the frame to blame: the builder's own file if it is on the stack, else the
    deepest frame outside the standard library, site-packages and this package."""
    if isinstance(err, SyntaxError) and err.filename:
        return f"{err.filename}:{err.lineno}"
    frames = traceback.extract_tb(err.__traceback__)
    if prefer:
        mine = [f for f in frames if Path(f.filename).resolve() == Path(prefer).resolve()]
        if mine:
            return f"{mine[-1].filename}:{mine[-1].lineno}"
    user = [f for f in frames if not f.filename.startswith("<")
            and not str(Path(f.filename).resolve()).startswith((_CORE, *_LIBRARY))]
    f = (user or frames or [None])[-1]
    return f"{f.filename}:{f.lineno}" if f is not None else "builder"


def _fail(err: BaseException, spec: str, prefer: str | None, doing: str) -> ModelError:
    text = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
    what = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return ModelError(_where(err, prefer), f"{what} ({doing} {spec}; --debug shows the traceback)")


def _import_file(path: Path, spec: str):
    if not path.is_file():
        raise ModelError(path, "no such builder file")
    name = "rcnn_lens_builder_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    mspec = importlib.util.spec_from_file_location(name, path)
    if mspec is None or mspec.loader is None:
        raise ModelError(path, "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(mspec)
    sys.modules[name] = module
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # so the file can import its neighbours
    try:
        mspec.loader.exec_module(module)
    except BaseException as err:
        sys.modules.pop(name, None)
        if isinstance(err, KeyboardInterrupt | SystemExit):
            raise
        raise _fail(err, spec, str(path), "while importing") from err
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def _import_module(name: str, spec: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and (name == err.name or name.startswith(err.name + ".")):
            raise ModelError(spec, f"no module named {err.name} (is it on PYTHONPATH?)") from err
        raise _fail(err, spec, None, "while importing") from err
    except Exception as err:  # noqa: BLE001 - any error in the user's module
        raise _fail(err, spec, None, "while importing") from err


def build(spec: str):
    """Import the builder and call it; returns the GeneralizedRCNN it made (not yet in eval mode)."""
    from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

    target, func_name, is_file = parse(spec)
    module = _import_file(Path(target).expanduser(), spec) if is_file else _import_module(target, spec)
    func = getattr(module, func_name, None)
    source = target if is_file else getattr(module, "__file__", None) or target
    if func is None:
        raise ModelError(source, f"has no function {func_name}")
    if not callable(func):
        raise ModelError(source, f"{func_name} is a {type(func).__name__}, not a function")
    try:
        sig = inspect.signature(func)
        required = [p.name for p in sig.parameters.values()
                    if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                                                          p.KEYWORD_ONLY)]
    except (TypeError, ValueError):
        required = []
    if required:
        raise ModelError(source, f"{func_name}() needs arguments ({', '.join(required)}); a builder is called "
                                 "with none")
    prefer = str(Path(target).expanduser()) if is_file else getattr(module, "__file__", None)
    try:
        model = func()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as err:
        raise _fail(err, spec, prefer, "in builder") from err
    if not isinstance(model, GeneralizedRCNN):
        raise ModelError(source, f"{func_name}() returned a {type(model).__module__}.{type(model).__name__}, not a "
                                 "torchvision GeneralizedRCNN (FasterRCNN, MaskRCNN, KeypointRCNN)")
    return model
