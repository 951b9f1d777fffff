"""Import hook installed by scripts/setup.sh on CPU machines.

PyPI's torchvision wheel is a CUDA build whose C++ ops are missing next to the CPU torch wheel, so
`import torchvision` dies in `_meta_registrations` ("operator torchvision::nms does not exist"), which
breaks transformers' Qwen-VL processors. Defining the two op schemas before torchvision loads is
enough. The hook is lazy: torch is imported only when torchvision is, never at interpreter start.
"""
import importlib.abc
import sys


class _TorchvisionOpsFix(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torchvision":
            return None
        sys.meta_path.remove(self)
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
        return None


if not any(isinstance(f, _TorchvisionOpsFix) for f in sys.meta_path):
    sys.meta_path.insert(0, _TorchvisionOpsFix())
