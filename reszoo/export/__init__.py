"""A trained entry in the formats other tools read.

- ``hf.py``: a Hugging Face Hub model folder (``model.safetensors``,
  ``config.json`` in timm's layout, ``README.md``), and loading one back;
- ``card.py``: the Markdown model card written into that folder;
- ``onnx.py``: an ONNX file with a dynamic batch size, checked against eager
  PyTorch in ONNX Runtime (the optional ``reszoo[onnx]`` extra).

Library code: the ``reszoo export`` command calls it and renders the result.
"""
