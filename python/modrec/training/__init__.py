"""PyTorch training side of gr-modrec: models, training, evaluation, ONNX export.

Never imports GNU Radio or pmt, so it runs on GPU boxes and clusters without them. Submodules
are imported on demand (``from gnuradio.modrec.training.models import create_model``) so that
``evaluate``'s ONNX path and ``metrics`` stay usable without torch.
"""
