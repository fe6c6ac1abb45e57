"""wavesmith: learn a database of audio clips, generate new marked audio from it.

The Python API mirrors the CLI; each area lives in its own module:

- :mod:`wavesmith.audio`: reading, writing, resampling, mu-law, log-mel, loudness.
- :mod:`wavesmith.db`: the clip database (``Database``, ``ClipDataset``).
- :mod:`wavesmith.models`: the model contract and the registry (``wavenet``, ``wavegan``).
- :mod:`wavesmith.train`: the training engine; :mod:`wavesmith.generate`: generation.
- :mod:`wavesmith.evaluate`: metrics and reports; :mod:`wavesmith.watermark`: marking.
"""

__version__ = "0.1.0"

from wavesmith.errors import WavesmithError  # noqa: E402

__all__ = ["WavesmithError", "__version__"]
