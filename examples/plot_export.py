"""
Export a tagger for deployment
==============================

:meth:`~skattloc.AttLocTagger.to_torchscript` and :meth:`~skattloc.AttLocTagger.to_onnx`
write the trained network to a file that runs without skattloc: TorchScript with
``torch.jit.load`` (Python or C++), ONNX with onnxruntime and other ONNX runtimes. The
exported network takes raw log-mel frames and returns the clip probabilities and every
frame-level output.
"""

# %%
# A small trained tagger
# ----------------------
import os
import tempfile

import numpy as np
import torch

from skattloc import AttLocTagger, LogMelExtractor, make_weak_events
from skattloc.export import output_names

audio, Y, events = make_weak_events(n_clips=80, n_classes=2, duration=1.0, random_state=0)
X = LogMelExtractor().fit_transform(audio)  # (80, 61, 40)
tagger = AttLocTagger(rnn_hidden=16, rnn_layers=1, dense_units=32, batch_size=20,
                      max_epochs=3, random_state=0).fit(X, Y)
print("outputs:", output_names(tagger))

# %%
# TorchScript
# -----------
# Needs nothing beyond torch. The input is ``(batch, n_frames, n_mels)`` float32 with any
# batch size and number of frames; all clips of a batch have the same length.
folder = tempfile.mkdtemp()
path = tagger.to_torchscript(os.path.join(folder, "tagger.pt"))
scripted = torch.jit.load(str(path))
clip, frame, weighted, att, loc = scripted(torch.from_numpy(X[:4]))
print("clip probabilities", tuple(clip.shape), "frame outputs", tuple(frame.shape))
print("max difference to predict_proba:",
      float(np.abs(clip.detach().numpy() - tagger.predict_proba(X[:4])).max()))

# %%
# ONNX
# ----
# Needs the ``onnx`` and ``onnxscript`` packages to export and an ONNX runtime to run
# (``pip install onnx onnxscript onnxruntime``); this part is skipped when they are
# missing. ``to_onnx`` checks the file against the PyTorch network when onnxruntime is
# installed.
import importlib.util

if all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime")):
    import onnxruntime

    onnx_path = tagger.to_onnx(os.path.join(folder, "tagger.onnx"))
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    print("inputs:", [(i.name, i.shape) for i in session.get_inputs()])
    outputs = session.run(None, {"logmel": X[:4]})
    print("max difference to predict_proba:", float(np.abs(outputs[0] - tagger.predict_proba(X[:4])).max()))
else:
    print("onnx, onnxscript or onnxruntime is not installed: ONNX export skipped")
