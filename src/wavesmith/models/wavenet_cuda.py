"""WaveNet's cached generation in torch, for CUDA: every step one static graph.

The algorithm and the folded weights are those of :mod:`wavesmith.models.wavenet_fast`
(the numpy :class:`~wavesmith.models.wavenet_fast.Generator` folds them); this form keeps
all state on the device so that one step can be captured as a CUDA graph and replayed
once per sample.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from wavesmith.models.wavenet_fast import COND_CHUNK, NOISE_CHUNK, Generator


class TorchGenerator:
    """The same algorithm in torch, for CUDA: every step is one static graph.

    All state lives on the device and the step reads the time from a device tensor, so
    one step can be captured as a CUDA graph and replayed once per sample (a few
    microseconds of launch instead of ~300 kernel launches). On a CPU it runs eagerly
    (slowly; the numpy :class:`Generator` is the CPU path) so tests can check it there.
    Folded weights come from the numpy generator, so both share one folding.
    """

    def __init__(self, model, n: int, h: torch.Tensor | None, temperature: float = 1.0, graph: bool | None = None):
        """``graph``: capture the step as a CUDA graph (default: on CUDA devices).

        Off CUDA, ``graph=True`` runs the capture's warm-up and in-place reset and then steps
        eagerly, so a CPU test covers everything of that path but the capture itself.
        """
        self.graph = graph
        self.flow = ""  # set by run: "graph" (captured, replayed), "graph-eager" (that flow off CUDA), "eager"
        self.ref = ref = Generator(model, n, h, temperature)
        dev = model.device
        self.dev, self.n, self.mulaw, self.temperature = dev, n, ref.mulaw, temperature

        def T(a):
            return torch.as_tensor(np.ascontiguousarray(a), device=dev)

        self.layers = [dict(w=T(q.w_taps), base=T(q.base), w_res=T(q.w_res[:-1]), b_res=T(q.w_res[-1]), k=q.k,
                            d=q.d, size=q.size, g=q.g) for q in ref.layers]
        self.w_skip, self.w1, self.b1, self.w2, self.b2 = (T(a) for a in (ref.w_skip, ref.w1, ref.b1, ref.w2, ref.b2))
        self.embed, self.embed_bias = [T(e) for e in ref.embed], T(ref.embed_bias)
        self.w_cond = T(ref.w_cond) if ref.mel_h is not None else None
        self.gh = ref.layers[0].g // 2 if ref.layers else 0

    def _reset(self, total: int, primer: np.ndarray | None, keep: bool) -> None:
        dev, n = self.dev, self.n
        self.t = torch.zeros((), dtype=torch.long, device=dev)
        for q in self.layers:
            q["queue"] = q["base"].expand(q["size"], n, q["g"]).clone()
        kin = len(self.embed)
        self.hist = torch.full((n, kin), self.ref.pad, dtype=torch.float32, device=dev)
        self.hist[:, -1] = self.ref.start
        self.first = torch.tensor(0 if primer is None else primer.shape[1], device=dev)
        self.primer = torch.zeros(n, total, dtype=torch.float32, device=dev)
        if primer is not None:
            self.primer[:, : primer.shape[1]] = torch.as_tensor(primer, dtype=torch.float32)
        self.values = torch.zeros(n, total, dtype=torch.float32, device=dev)
        width = self.ref.out.shape[1] if self.mulaw else self.ref.mixtures + 1
        self.noise = torch.zeros(NOISE_CHUNK, n, width, device=dev)
        width = len(self.layers) * self.layers[0]["g"]
        self.cond = torch.zeros(COND_CHUNK, n, width, device=dev) if self.w_cond is not None else None
        self.outputs = torch.zeros(total, n, self.ref.out.shape[1], device=dev) if keep else None

    def _step(self) -> None:
        t, n, gh = self.t, self.n, self.gh
        tokens = self.hist.long() if self.mulaw else None
        x = 0 if self.mulaw else self.embed_bias
        for j, e in enumerate(self.embed):  # the causal input convolution
            x = x + (e.index_select(0, tokens[:, j]) if self.mulaw else self.hist[:, j : j + 1] * e[0])
        zs = []
        i_chunk = (t % NOISE_CHUNK).reshape(1)
        cond = None if self.cond is None else self.cond.index_select(0, (t % COND_CHUNK).reshape(1))[0]
        for i, q in enumerate(self.layers):
            g, k, size, queue = q["g"], q["k"], q["size"], q["queue"]
            y = x @ q["w"]
            queue.index_copy_(0, ((t - 1) % size).reshape(1), (y[:, :g] + q["base"])[None])
            for j in range(1, k - 1):
                slot = ((t + (k - 1 - j) * q["d"]) % size).reshape(1)  # (index_add_ is not deterministic on CUDA)
                queue.index_copy_(0, slot, queue.index_select(0, slot) + y[None, :, j * g : (j + 1) * g])
            now = queue.index_select(0, (t % size).reshape(1))[0] + y[:, (k - 1) * g :]
            if cond is not None:
                now = now + cond[:, i * g : (i + 1) * g]
            a = torch.tanh(now)
            z = a[:, :gh] * (1.0 + a[:, gh:])
            zs.append(torch.cat([z, torch.ones(n, 1, device=self.dev)], 1))
            x = x + z @ q["w_res"] + q["b_res"]
        skip = torch.relu(torch.cat(zs, 1) @ self.w_skip)
        out = torch.relu(skip @ self.w1 + self.b1) @ self.w2 + self.b2
        if self.outputs is not None:
            self.outputs.index_copy_(0, t.reshape(1), out[None])
        noise = self.noise.index_select(0, i_chunk)[0]
        if self.mulaw:
            drawn = (out + noise if self.temperature > 0 else out).argmax(1).float()
        else:
            m = self.ref.mixtures
            logit = out[:, :m] - torch.log(-torch.log(noise[:, :m])) if self.temperature > 0 else out[:, :m]
            comp = logit.argmax(1, keepdim=True)
            mu, log_s = out[:, m:].gather(1, comp)[:, 0], out[:, 2 * m :].gather(1, comp)[:, 0]
            u = noise[:, m]
            v = (mu + torch.exp(log_s) * self.temperature * (torch.log(u) - torch.log1p(-u))).clamp(-1, 1)
            half = (2**16 - 1) / 2
            drawn = torch.round((v + 1) * half) / half - 1
        v = torch.where(t < self.first, self.primer.index_select(1, t.reshape(1))[:, 0], drawn)
        self.values.index_copy_(1, t.reshape(1), v[:, None])
        self.hist.copy_(torch.cat([self.hist[:, 1:], v[:, None]], 1))
        self.t.add_(1)

    def run(self, samples: int, primer: np.ndarray | None, seed: int, keep_outputs: bool = False):
        """As :meth:`Generator.run` (same noise stream, so the same values for the same seed)."""
        first = 0 if primer is None else primer.shape[1]
        total = first + samples
        rng = np.random.default_rng(seed)
        step = self._step
        if self.graph if self.graph is not None else self.dev.type == "cuda":
            step = self._capture(total, primer, keep_outputs)  # leaves the captured buffers reset
            self.flow = "graph" if self.dev.type == "cuda" else "graph-eager"
        else:
            self._reset(total, primer, keep_outputs)
            self.flow = "eager"
        for t in range(total):
            if t % COND_CHUNK == 0 and self.cond is not None:
                chunk = self.ref.cond_chunk(t)
                self.cond[: len(chunk)].copy_(torch.as_tensor(chunk, device=self.dev))
            if t % NOISE_CHUNK == 0 and t + NOISE_CHUNK > first:
                self.noise.copy_(torch.as_tensor(self.ref.draw_noise(rng), device=self.dev))
            step()
        values = self.values[:, first:].cpu().double().numpy()
        if self.mulaw:
            values = values.astype(np.int64)
        return values, (self.outputs.cpu().numpy() if keep_outputs else None)

    def _capture(self, total: int, primer: np.ndarray | None, keep: bool):
        """Warm up on a side stream, then capture one step as a CUDA graph (state reset after).

        Off CUDA (tests) the same warm-up and in-place reset run, and the step stays eager.
        """
        self._reset(total, primer, keep)
        cuda = self.dev.type == "cuda"
        side = torch.cuda.Stream() if cuda else None
        if cuda:
            side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side) if cuda else contextlib.nullcontext():
            for _ in range(3):
                self._step()
        if not cuda:
            self._reset_in_place()
            return self._step
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._step()
        self._cuda_graph = graph  # keep it (and the memory pool its kernels use) alive
        self._reset_in_place()
        return graph.replay

    def _reset_in_place(self) -> None:
        """Reset the captured buffers without reallocating them (the graph holds their addresses)."""
        self.t.zero_()
        for q in self.layers:
            q["queue"].copy_(q["base"].expand_as(q["queue"]))
        self.hist.fill_(self.ref.pad)
        self.hist[:, -1] = self.ref.start
        self.values.zero_()
        if self.outputs is not None:
            self.outputs.zero_()
