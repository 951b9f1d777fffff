"""Import hook installed by scripts/setup.sh on CPU machines.

PyPI's torchvision wheel is a CUDA build whose C++ ops are missing next to the CPU torch wheel, so
`import torchvision` dies in `_meta_registrations` ("operator torchvision::nms does not exist"), which
breaks transformers' Qwen-VL processors. Defining the two op schemas before torchvision loads is
enough. The hook is lazy: torch is imported only when torchvision's module is executed, never at
interpreter start and never for a mere `importlib.util.find_spec("torchvision")` (libraries such as
`datasets` probe for it on import: importing torch there cost seconds on every `vdata build`).
"""
import importlib.abc
import importlib.machinery
import sys


def _define_ops() -> None:
    try:
        import torch

        lib = torch.library.Library("torchvision", "FRAGMENT")
        for op in ("nms", "qnms"):
            try:
                lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            except RuntimeError:
                pass  # already defined: a working torchvision build
        globals()["_keepalive"] = lib
    except Exception:
        pass


class _OpsFirstLoader(importlib.abc.Loader):
    """torchvision's own loader, with the op schemas defined just before its module runs."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        _define_ops()
        return self._loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _TorchvisionOpsFix(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torchvision":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _OpsFirstLoader(spec.loader)
        return spec


if not any(type(f).__name__ == "_TorchvisionOpsFix" for f in sys.meta_path):
    sys.meta_path.insert(0, _TorchvisionOpsFix())
