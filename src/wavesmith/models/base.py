"""The model contract: what every architecture gives the training engine and ``generate``.

A model is a ``torch.nn.Module`` subclass of :class:`GenerativeModel`, built from its own
``Config`` dataclass and a :class:`DataInfo` (what the clip database says). It owns its
maths: its optimizers, its losses, how many updates one training step makes, and how it
samples. The engine owns time: devices, mixed precision, data-parallel gradient
averaging, clipping, schedules, EMA, checkpoints, logs. Neither names the other's
internals, so a GAN (two optimizers, several critic updates per step), a likelihood model
(one optimizer) and a diffusion model fit without special cases.

One training step, as the engine runs it::

    logs = model.train_step(next_batch, update, step)

where ``next_batch()`` returns the next batch (already on the model's device) and
``update(name, loss)`` back-propagates ``loss`` and steps the optimizer called ``name``
(gradient averaging across processes, clipping, schedule: all the engine's). A GAN calls
``next_batch`` and ``update("critic", ...)`` five times, then ``update("generator", ...)``.

A batch is a dict (see :class:`wavesmith.db.ClipDataset`):

- ``audio``: float32 ``(B, channels, samples)`` in [-1, 1], zero past a clip's end;
- ``mask``: float32 ``(B, samples)``, 1 where ``audio`` holds real samples;
- ``label``, ``speaker``, ``language``: int64 ``(B,)``, index into ``DataInfo.labels`` /
  ``.speakers`` / ``.languages``, -1 if none;
- ``text``: list of B transcripts ("" if none);
- ``length``: int64 ``(B,)``, real samples in each crop (the sum of ``mask``'s row);
- ``orig_rate``: int64 ``(B,)``, each clip's sample rate before it was stored: a clip
  recorded at 8 kHz holds nothing above 4 kHz, whatever the database rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from wavesmith.errors import WavesmithError

Batch = dict[str, Any]
# Every condition a model's ``sample`` may declare in ``accepts`` (see ``sample``).
CONDITIONS = ("label", "speaker", "mel_from", "prompt", "f0", "loudness", "text", "language", "speaker_vector")
NextBatch = Callable[[], Batch]
Update = Callable[[str, torch.Tensor], None]


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about the database it learns from."""

    sample_rate: int = 16000
    channels: int = 1
    labels: tuple[str, ...] = field(default_factory=tuple)  # index = label id
    speakers: tuple[str, ...] = field(default_factory=tuple)  # index = speaker id
    languages: tuple[str, ...] = field(default_factory=tuple)  # index = language id

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "labels": list(self.labels),
            "speakers": list(self.speakers),
            "languages": list(self.languages),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataInfo:
        # .get: checkpoints from before a field existed load with it empty
        return cls(int(d["sample_rate"]), int(d["channels"]), tuple(d.get("labels", ())),
                   tuple(d.get("speakers", ())), tuple(d.get("languages", ())))

    def label_id(self, name: str) -> int:
        """Index of label ``name``; a :class:`WavesmithError` listing the known ones if absent."""
        return _lookup(name, self.labels, "label")

    def speaker_id(self, name: str) -> int:
        """Index of speaker ``name``; a :class:`WavesmithError` listing the known ones if absent."""
        return _lookup(name, self.speakers, "speaker")

    def language_id(self, name: str) -> int:
        """Index of language ``name``; a :class:`WavesmithError` listing the known ones if absent."""
        return _lookup(name, self.languages, "language")


def _lookup(name: str, names: tuple[str, ...], what: str) -> int:
    if not names:
        raise WavesmithError(f"this model was trained without {what}s, so --{what} cannot be used")
    try:
        return names.index(name)
    except ValueError:
        raise WavesmithError(f"unknown {what} {name!r}; known {what}s: {', '.join(names)}") from None


class GenerativeModel(nn.Module):
    """Base class of every wavesmith model. Subclasses set ``name`` and ``Config``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    # Training-engine settings this model's maths calls for, applied before the user's own
    # ``[train]`` table and ``--set`` (e.g. WGAN-GP wants no gradient clipping and a constant
    # learning rate). Keys are fields of ``wavesmith.train.TrainConfig``.
    train_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: Any, info: DataInfo):
        super().__init__()
        self.config = config
        self.info = info

    # --- training -----------------------------------------------------------------------

    @property
    def crop_samples(self) -> int:
        """Length in samples of the training crops this model wants from the dataset."""
        raise NotImplementedError

    @property
    def random_crops(self) -> bool:
        """Whether training crops start anywhere in a clip (True) or at its start (one-shots: keep the onset)."""
        return True

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers by name; ``train_step`` passes these names to ``update``."""
        raise NotImplementedError

    def train_step(self, next_batch: NextBatch, update: Update, step: int) -> dict[str, float]:
        """One training step: draw batches, compute losses, call ``update``; return logs."""
        raise NotImplementedError

    def adapt_weights(self, weights: dict[str, torch.Tensor], trained_on: DataInfo) -> dict[str, torch.Tensor]:
        """Weights trained on another database (``trained_on``), made to fit this model's (fine-tuning).

        The default changes nothing, so class tables must match; a model with label or
        speaker tables overrides this to match classes by name.
        """
        return weights

    @torch.no_grad()
    def validation_loss(self, batch: Batch) -> dict[str, float]:
        """Losses on a held-out batch without updates; key ``loss`` ranks checkpoints (lower is better)."""
        raise NotImplementedError

    # --- generation ---------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        n: int,
        seconds: float,
        conditions: dict[str, Any] | None = None,
        seed: int | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Generate ``n`` clips of ``seconds``: float ``(n, channels, samples)`` on this model's device.

        ``conditions`` may hold ``label`` / ``speaker`` (int64 ``(n,)``), ``mel_from`` (a
        waveform ``(n, channels, samples)`` at the model's rate whose log-mel frames drive a
        vocoder; the model computes its own features), ``prompt`` (a waveform
        ``(n, channels, samples)`` to continue) or ``f0`` / ``loudness`` (float ``(n, frames)``
        contours in Hz and dB that a synthesizer plays, see :mod:`wavesmith.analysis`). A model
        raises :class:`WavesmithError` for a condition it does not support. The same ``seed`` gives the same audio.
        """
        raise NotImplementedError

    @property
    def accepts(self) -> frozenset[str]:
        """The conditions ``sample`` takes (names from :data:`CONDITIONS`) for this configuration.

        Previews, ``generate``, ``interpolate`` and the studio ask this instead of trying a
        condition and catching the error.
        """
        return frozenset()

    @property
    def requires(self) -> frozenset[str]:
        """The conditions ``sample`` cannot do without (a vocoder needs ``mel_from``); a subset of ``accepts``."""
        return frozenset()

    # Keyword settings ``sample`` takes beyond the contract's (a diffusion model's ``steps``,
    # ``guidance``, ``sampler``); ``generate`` passes only these.
    sample_options: ClassVar[frozenset[str]] = frozenset()

    @property
    def one_shots(self) -> bool:
        """Whether each clip is one sound that ends when it dies away (a drum hit, a note).

        ``generate`` then cuts each file after its sound (see ``--no-trim``), as a sample
        library's files are cut, instead of padding every file with silence to the window.
        """
        return False

    @property
    def greedy(self) -> bool:
        """Whether ``sample`` takes ``temperature=0``: the most likely value at every step (WaveNet)."""
        return False

    # --- a latent space (models where each clip is ``decode`` of one latent) ----------------

    @property
    def latent_space(self) -> bool:
        """Whether ``sample`` is ``decode(latent(n, seed, temperature), sample_labels(n, seed))``.

        Such a model names each clip by its latent, so ``interpolate`` can morph between two
        generated clips by decoding latents on a path between theirs. When True, the three
        methods below are implemented.
        """
        return False

    def latent(
        self, n: int, seed: int | None = None, temperature: float = 1.0, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """The ``n`` latents ``(n, D)`` that ``sample`` draws for ``seed`` and ``temperature``."""
        raise NotImplementedError(f"{type(self).__name__} has no latent space")

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Clips ``(n, channels, samples)`` of latents ``z``; ``labels`` are ids ``(n,)`` or weights ``(n, labels)``."""
        raise NotImplementedError(f"{type(self).__name__} has no latent space")

    def sample_labels(self, n: int, seed: int | None) -> torch.Tensor | None:
        """The label ids ``sample`` draws for ``seed`` when given none (None for a model without labels)."""
        raise NotImplementedError(f"{type(self).__name__} has no latent space")

    @property
    def features(self) -> Any:
        """Analysis contours wanted in every training batch (keys ``f0``, ``loudness``): a
        ``wavesmith.analysis.FeatureSpec``, or None. The database computes them once per clip."""
        return None

    @property
    def max_seconds(self) -> float | None:
        """Longest clip one ``sample`` call can make, in seconds (None: any length)."""
        return None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


class OneLossModel(GenerativeModel):
    """A model trained by one loss under one Adam optimizer at ``config.lr`` (diffusion models).

    Subclasses implement ``loss(batch, generator=None)``; validation draws its random times
    and noise from a generator seeded 0, so validations at different steps compare like
    with like.
    """

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def train_step(self, next_batch: NextBatch, update: Update, step: int) -> dict[str, float]:
        loss = self.loss(next_batch())
        update("model", loss)
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def validation_loss(self, batch: Batch) -> dict[str, float]:
        return {"loss": float(self.loss(batch, generator=torch.Generator(device="cpu").manual_seed(0)))}


def rows_by_name(table: torch.Tensor | None, old: tuple[str, ...], new: tuple[str, ...],
                 own: torch.Tensor) -> torch.Tensor:
    """A class table (a row per name, then a "none" row) for names ``new``, from ``table`` trained on ``old``.

    Rows are matched by name, so fine-tuning on a database with other or reordered classes
    keeps what each class learned; a name ``old`` lacks starts as the "none" row. Without
    ``table`` the model's own initial rows ``own`` stay.
    """
    own = own.detach().clone()
    if table is None:
        return own
    none = table[-1]
    if new:
        own[:-1] = torch.stack([table[old.index(n)] if n in old else none for n in new])
    own[-1] = none
    return own


def generator_for(seed: int | None, device: torch.device | str) -> torch.Generator | None:
    """A seeded ``torch.Generator`` on ``device`` (None when ``seed`` is None)."""
    if seed is None:
        return None
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g
