"""Count MindSpore graph compiles, whoever triggers them.

MindSpore 2.x compiles through two Python entry points: ``_CellGraphExecutor.compile`` (a Cell called in graph mode)
and ``_JitExecutor.compile`` (``ms.jit`` functions and jitted Cell methods, in either mode). Both return early when
the graph is cached. Wrapping them counts real compiles whether the network is called directly or through a Cell
or ``ms.jit`` wrapper the library adds later. ``capture_mode="bytecode"`` (PIJit) compiles in C++ and is not seen.
"""

from __future__ import annotations

import importlib


def _api_module():
    for name in ("mindspore.graph.api", "mindspore.common.api"):  # 2.10 moved it to mindspore.graph
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "_CellGraphExecutor") or hasattr(module, "_JitExecutor"):
            return module
    return None


class CompileCounter:
    """Context manager; ``count`` is the number of graphs compiled while installed (None if no hook was found)."""

    def __init__(self):
        self.count = 0
        self.hooks: list[str] = []
        self._restore: list[tuple[type, str, object]] = []

    @property
    def available(self) -> bool:
        return bool(self.hooks)

    def total(self) -> float:
        return float(self.count)

    def __enter__(self) -> CompileCounter:
        api = _api_module()
        if api is None:
            return self
        cell_executor = getattr(api, "_CellGraphExecutor", None)
        if cell_executor is not None and "compile" in vars(cell_executor):
            self._wrap(cell_executor, self._cell_compile, f"{api.__name__}._CellGraphExecutor.compile")
        jit_executor = getattr(api, "_JitExecutor", None)
        jit_cache = getattr(api, "ms_compile_cache", None)
        if jit_executor is not None and "compile" in vars(jit_executor) and isinstance(jit_cache, set):
            self._wrap(jit_executor, self._jit_compile(jit_cache), f"{api.__name__}._JitExecutor.compile")
        return self

    def _wrap(self, cls: type, make, label: str) -> None:
        original = vars(cls)["compile"]
        self._restore.append((cls, "compile", original))
        cls.compile = make(original)
        self.hooks.append(label)

    def _cell_compile(self, original):
        counter = self

        def compile(executor, obj, *args, **kwargs):
            size = len(getattr(obj, "compile_cache", ()) or ())
            result = original(executor, obj, *args, **kwargs)
            # 2.10 returns (phase, compiled?); otherwise fall back to the growth of the Cell's compile cache.
            if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], bool):
                counter.count += int(result[1])
            else:
                counter.count += int(len(getattr(obj, "compile_cache", ()) or ()) > size)
            return result

        return compile

    def _jit_compile(self, cache: set):
        counter = self

        def make(original):
            def compile(executor, *args, **kwargs):
                size = len(cache)  # every new jit graph's phase is added to this set
                result = original(executor, *args, **kwargs)
                counter.count += max(0, len(cache) - size)
                return result

            return compile

        return make

    def __exit__(self, *exc) -> bool:
        for cls, name, original in reversed(self._restore):
            setattr(cls, name, original)
        self._restore.clear()
        return False
