"""Fast WaveNet generation: the cached queue algorithm (Paine et al., 2016, "Fast Wavenet").

A full forward pass recomputes the whole receptive field for every new sample. Here each
dilated layer instead keeps a queue (a ring buffer) of what its past inputs will
contribute to its future outputs, so one new sample costs one pass down the stack: a few
matrix-vector products per layer, whatever the dilation, batched across streams, for any
length. The result equals the full forward pass over the generated sequence (a test pins
it to 1e-4 in float32).

Generation is one small step per sample, so per-call framework overhead, not arithmetic,
bounds the speed (4 M multiply-adds per sample for the reference model take ~0.1 ms; 300
framework calls take longer). The per-sample loop therefore runs in numpy (about 1 us per
call against several for torch eager) on preallocated buffers (``out=`` everywhere), with
the weights folded once so that each layer makes nine calls:

- every tap of the dilated convolution in ONE product ``x_t @ [W_0 | W_1 | W_2]``: the
  current tap is used now, the past taps are pushed into the layer's queue, at the slots
  of the future outputs they feed (``t + d``, ``t + 2d``);
- sigmoid(u) = (1 + tanh(u / 2)) / 2, so one tanh covers filter and gate (the 1/2 on the
  gate rows and the final 1/2 are folded into the weights);
- the skip 1x1 convolutions of all layers in ONE product at the end: the gated outputs of
  every layer sit side by side in one buffer ``Z`` and ``skip = Z @ W_skip_all``;
- biases and label embeddings enter the queue slot when it is first written; the
  residual bias rides on a constant 1 column next to each layer's gated output;
- the softmax temperature is folded into the last layer; sampling adds pre-drawn Gumbel
  noise and takes the argmax (no softmax, no multinomial).

On a CUDA device the same algorithm runs in torch, one CUDA graph per step
(:mod:`wavesmith.models.wavenet_cuda`); the BLAS thread count of the numpy path is chosen
by :mod:`wavesmith.models.blas`.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from wavesmith.models.blas import ThreadTrial, set_blas_threads

NOISE_CHUNK = 256  # samples of pre-drawn noise at a time
COND_CHUNK = 32  # samples of precomputed mel conditioning at a time (n * layers * gate floats each)


class QueuedLayer:
    """One residual layer for generation: folded weights and its own queue of the future.

    ``queue[s]`` holds the sum of what past inputs contribute to the gate pre-activation
    of the output at time ``s`` (modulo the queue length ``(k - 1) d + 1``).
    """

    def __init__(self, layer, n: int, base: np.ndarray, z: np.ndarray, zi: slice):
        w = layer.dilated.weight.detach().double().cpu().numpy()  # (G, R, k)
        g, _, k = w.shape
        half = np.ones(g)
        half[g // 2 :] = 0.5  # sigmoid(u) = (1 + tanh(u/2)) / 2
        self.k, self.d, self.g = k, layer.dilation, g
        self.w_taps = _f32(np.concatenate([(w[:, :, j] * half[:, None]).T for j in range(k)], axis=1))
        self.base = _f32(base * half)  # (n, G): bias (+ label embedding) for each stream
        r = layer.res.weight.detach().double().cpu().numpy()[:, :, 0]  # (R, G/2)
        self.w_res = _f32(np.concatenate([0.5 * r.T, layer.res.bias.detach().double().cpu().numpy()[None]]))
        self.size = (k - 1) * self.d + 1
        self.queue = np.empty((self.size, n, g), np.float32)
        self.queue[:] = self.base  # inputs before the start are zero padding: bias only
        # Views made once: slicing costs about as much as a small numpy call.
        h = g // 2
        self.slots = list(self.queue)
        self.filt, self.gate = [s[:, :h] for s in self.slots], [s[:, h:] for s in self.slots]
        self.y = np.empty((n, k * g), np.float32)
        self.y_taps = [self.y[:, j * g : (j + 1) * g] for j in range(k)]
        self.mid = [(self.y_taps[j], (k - 1 - j) * self.d) for j in range(1, k - 1)]
        self.z = z[:, zi]  # this layer's gated output (and its constant-1 column) inside Z
        self.z_out = self.z[:, :h]
        self.res = np.empty((n, r.shape[0]), np.float32)

    def step(self, x: np.ndarray, t: int, cond: np.ndarray | None) -> None:
        """Advance one sample: read ``x`` (n, R), write the gated output, update ``x`` in place."""
        size, slots = self.size, self.slots
        np.matmul(x, self.w_taps, out=self.y)
        np.add(self.y_taps[0], self.base, out=slots[(t - 1) % size])  # oldest tap opens slot t+(k-1)d
        for y, ahead in self.mid:
            s = slots[(t + ahead) % size]
            np.add(s, y, out=s)
        i = t % size
        now = slots[i]
        np.add(now, self.y_taps[-1], out=now)
        if cond is not None:
            np.add(now, cond, out=now)
        np.tanh(now, out=now)
        gate = self.gate[i]
        np.add(gate, 1.0, out=gate)
        np.multiply(self.filt[i], gate, out=self.z_out)
        np.matmul(self.z, self.w_res, out=self.res)
        np.add(x, self.res, out=x)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


class Generator:
    """The whole network, folded for one-sample-at-a-time generation of ``n`` streams."""

    def __init__(self, model, n: int, h: torch.Tensor | None, temperature: float = 1.0):
        c = model.config
        self.n, self.mulaw, self.mixtures = n, c.output == "mulaw", c.mixtures
        gh = c.gate_channels // 2
        self.z = np.zeros((n, len(model.layers) * (gh + 1)), np.float32)
        self.z[:, gh :: gh + 1] = 1.0  # the constant column after each layer's gated output
        self.global_h = h is not None and h.shape[-1] == 1
        self.mel_h = None if h is None or self.global_h else h  # (n, cond, T), projected per chunk
        self.layers = []
        for i, layer in enumerate(model.layers):
            base = np.broadcast_to(_np(layer.dilated.bias), (n, c.gate_channels))
            if self.global_h:
                base = base + _np(h[:, :, 0]) @ _np(layer.cond.weight[:, :, 0]).T
            self.layers.append(QueuedLayer(layer, n, base, self.z, slice(i * (gh + 1), (i + 1) * (gh + 1))))
        if self.mel_h is not None:  # all layers' conditioning projections, stacked (gate rows halved)
            w = np.concatenate([_np(layer.cond.weight[:, :, 0]) for layer in model.layers])
            w[np.tile(np.arange(c.gate_channels) >= gh, len(model.layers))] *= 0.5
            self.w_cond = _f32(w.T)
        skip = np.zeros((len(model.layers), gh + 1, c.skip_channels))
        for i, layer in enumerate(model.layers):
            skip[i, :gh] = 0.5 * _np(layer.skip.weight[:, :, 0]).T
            skip[i, gh] = _np(layer.skip.bias)  # each layer's bias on its constant-1 row
        self.w_skip = _f32(skip.reshape(-1, c.skip_channels))
        conv1, conv2 = model.head[1], model.head[3]
        self.w1, self.b1 = _f32(_np(conv1.weight[:, :, 0]).T), _f32(_np(conv1.bias))
        scale = 1.0 / temperature if self.mulaw and temperature > 0 else 1.0  # softmax(logits / T)
        self.w2, self.b2 = _f32(_np(conv2.weight[:, :, 0]).T * scale), _f32(_np(conv2.bias) * scale)
        self.temperature = temperature
        emb = _np(model.embed)
        self.embed_bias = _f32(_np(model.embed_bias))
        if self.mulaw:
            emb[-1] += self.embed_bias  # the bias rides on every row of the current tap's table
        self.embed = [_f32(e) for e in emb]
        self.pad = float(c.quantization_channels) if self.mulaw else 0.0
        self.start = c.quantization_channels // 2 if self.mulaw else 0.0
        self.x = np.empty((n, c.residual_channels), np.float32)
        self.skip = np.empty((n, c.skip_channels), np.float32)
        self.hidden = np.empty((n, c.skip_channels), np.float32)
        self.out = np.empty((n, self.w2.shape[1]), np.float32)

    def _input(self, history: list[np.ndarray]) -> None:
        """The causal input convolution over the last ``input_kernel`` inputs, into ``x``."""
        x = self.x
        for j, (e, v) in enumerate(zip(self.embed, history, strict=True)):
            if self.mulaw:
                part = e[v.astype(np.intp)]
            else:
                part = v[:, None] * e[0]
            if j == 0:
                x[:] = part
            else:
                np.add(x, part, out=x)
        if not self.mulaw:
            np.add(x, self.embed_bias, out=x)

    def cond_chunk(self, start: int) -> np.ndarray | None:
        if self.mel_h is None:
            return None
        h = self.mel_h[:, :, start : start + COND_CHUNK].permute(2, 0, 1).detach().cpu().float().numpy()
        return np.matmul(h, self.w_cond)  # (chunk, n, layers * G)

    def _head(self) -> np.ndarray:
        np.matmul(self.z, self.w_skip, out=self.skip)
        np.maximum(self.skip, 0.0, out=self.skip)
        np.matmul(self.skip, self.w1, out=self.hidden)
        np.add(self.hidden, self.b1, out=self.hidden)
        np.maximum(self.hidden, 0.0, out=self.hidden)
        np.matmul(self.hidden, self.w2, out=self.out)
        np.add(self.out, self.b2, out=self.out)
        return self.out

    def run(self, samples: int, primer: np.ndarray | None, seed: int, keep_outputs: bool = False,
            threads: tuple[int, ...] = ()):
        """Generate ``samples`` values per stream after listening to ``primer`` (n, P).

        ``threads``: BLAS thread counts to try on the first steps; the fastest is kept (on a
        shared machine a second thread can be 10x slower, spinning against other processes).
        Returns (values (n, samples), outputs (P + samples, n, out) if ``keep_outputs``).
        """
        rng = np.random.default_rng(seed)
        first = 0 if primer is None else primer.shape[1]
        total = first + samples
        kin = len(self.embed)
        history = [np.full(self.n, self.pad, np.float64) for _ in range(kin - 1)]
        history.append(np.full(self.n, self.start, np.float64))
        values = np.empty((self.n, samples), np.int64 if self.mulaw else np.float64)
        outputs = [] if keep_outputs else None
        g = self.layers[0].g if self.layers else 0
        noise = cond = None
        trial = ThreadTrial(threads if total >= 16 * ThreadTrial.STEPS else ())
        for t in range(total):
            trial.tick(t)
            if t % COND_CHUNK == 0:
                cond = self.cond_chunk(t)
            if t % NOISE_CHUNK == 0 and t + NOISE_CHUNK > first:
                noise = self.draw_noise(rng)
            self._input(history)
            if cond is None:
                for layer in self.layers:
                    layer.step(self.x, t, None)
            else:
                for i, layer in enumerate(self.layers):
                    layer.step(self.x, t, cond[t % COND_CHUNK, :, i * g : (i + 1) * g])
            if t < first and not keep_outputs:
                v = primer[:, t]  # listening to the prompt: the head is not needed
            else:
                out = self._head()
                if keep_outputs:
                    outputs.append(out.copy())
                v = primer[:, t] if t < first else self._draw(out, noise, t % NOISE_CHUNK)
                if t >= first:
                    values[:, t - first] = v
            history = history[1:] + [np.asarray(v, np.float64)]
        return values, (np.stack(outputs) if keep_outputs else None)

    def draw_noise(self, rng: np.random.Generator) -> np.ndarray:
        width = self.out.shape[1] if self.mulaw else self.mixtures + 1
        u = rng.random((NOISE_CHUNK, self.n, width), dtype=np.float32)
        np.clip(u, 1e-7, 1 - 1e-7, out=u)
        if self.mulaw:
            return -np.log(-np.log(u))  # Gumbel: argmax(logits + G) samples softmax(logits)
        return u

    def _draw(self, out: np.ndarray, noise: np.ndarray, i: int) -> np.ndarray:
        if self.mulaw:
            if self.temperature > 0:
                np.add(out, noise[i], out=out)
            return out.argmax(axis=1)
        m = self.mixtures
        u = noise[i]
        k = (out[:, :m] - np.log(-np.log(u[:, :m])) if self.temperature > 0 else out[:, :m]).argmax(axis=1)
        rows = np.arange(self.n)
        mu, log_s = out[rows, m + k].astype(np.float64), out[rows, 2 * m + k].astype(np.float64)
        e = np.log(u[:, m]) - np.log1p(-u[:, m])  # a standard logistic draw
        v = np.clip(mu + np.exp(log_s) * self.temperature * e, -1.0, 1.0)
        half = (2**16 - 1) / 2
        return np.round((v + 1) * half) / half - 1  # the 16-bit value the network will hear


def generate(model, n: int, samples: int, h, primer: torch.Tensor | None, seed: int, temperature: float
             ) -> torch.Tensor:
    """Values (n, samples): mu-law classes (int64) or 16-bit values in [-1, 1] (float64)."""
    prim = None if primer is None else primer.detach().cpu().double().numpy()
    if model.device.type == "cuda":
        from wavesmith.models.wavenet_cuda import TorchGenerator

        values, _ = TorchGenerator(model, n, h, temperature).run(samples, prim, seed)
        return torch.from_numpy(values)
    gen = Generator(model, n, h, temperature)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    old = set_blas_threads(1)
    try:  # one stream: products too small to split; a batch: let the machine decide
        values, _ = gen.run(samples, prim, seed, threads=(min(cores, 4), 1) if n >= 8 and cores > 1 else ())
    finally:
        if old is not None:
            set_blas_threads(old)
    return torch.from_numpy(values)
