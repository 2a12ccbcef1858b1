"""griffe extensions for the API reference (mkdocs.yml loads every one in this file). Not a page of the site:
``exclude_docs`` in mkdocs.yml leaves this file out.

* :class:`SphinxRolesAsCode`: the sources write cross-references as Sphinx does (``:class:`~edm_sampler.VanillaCFG```,
  ``:func:`get```), which Markdown would print verbatim; each becomes inline code of the name Sphinx would show
  (after ``~``: the last component).
* :class:`SamplerSignatures`: a sampler's constructor signature is built at run time from its declared options
  (``BaseDiffusionSampler.__init_subclass__``), so reading the sources alone would show every sampler as
  ``(*args, **kwargs)`` and refuse the parameters its docstring documents. This extension imports the sampler's
  module and gives griffe the signature Python itself reports (``inspect.signature``).
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):`(~?)([^`]+)`")


def plain(docstring: str) -> str:
    """``:role:`name``` -> ```name``` (``~a.b.C`` -> ```C```)."""
    return ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`", docstring)


class SphinxRolesAsCode(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)


def runtime_signature(module: str, name: str) -> inspect.Signature | None:
    """The signature a class sets for itself (``__signature__`` in its own namespace), if it does."""
    if not module.startswith("edm_sampler.samplers."):
        return None
    # MindSpore's exit hook calls the deprecated Thread.getName(); this build process shows deprecations
    warnings.filterwarnings("ignore", message=r"getName\(\) is deprecated", category=DeprecationWarning)
    cls = getattr(importlib.import_module(module), name, None)
    if not inspect.isclass(cls) or "__signature__" not in vars(cls):
        return None
    return inspect.signature(cls)


class SamplerSignatures(griffe.Extension):
    def on_class_members(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        signature = runtime_signature(cls.module.path, cls.name)
        if signature is None:
            return
        parameters = griffe.Parameters(
            griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword),
            *(
                griffe.Parameter(
                    p.name,
                    kind=griffe.ParameterKind[p.kind.name.lower()],
                    default=None if p.default is inspect.Parameter.empty else repr(p.default),
                )
                for p in signature.parameters.values()
            ),
        )
        init = griffe.Function("__init__", parameters=parameters, returns="None", lineno=cls.lineno)
        cls.set_member("__init__", init)
