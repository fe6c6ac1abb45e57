import numpy as np
import pytest
import torch

from sounds import tone
from wavesmith import audio as A
from wavesmith.errors import WavesmithError
from wavesmith.plot import spectrogram_png


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3", "aiff"])
def test_write_then_read_round_trips_every_output_format(tmp_path, fmt):
    x = tone(440, 16000, 0.5, channels=2).T
    path = A.write(tmp_path / f"a.{fmt}", x, 16000)
    y, rate = A.read(path)
    assert rate == 16000 and y.shape[0] == 2
    assert abs(y.shape[1] - x.shape[1]) < 2000  # lossy codecs pad a little
    assert A.rms_db(y) == pytest.approx(A.rms_db(x), abs=1.5)
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"


def test_load_converts_rate_and_channels(tmp_path):
    A.write(tmp_path / "s.wav", tone(1000, 44100, 1.0, channels=2).T, 44100)
    y = A.load(tmp_path / "s.wav", 16000, channels=1)
    assert y.shape == (1, 16000)
    spectrum = np.abs(np.fft.rfft(y[0]))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=2)  # 1 Hz bins over one second


def test_unreadable_file_is_a_one_line_user_error(tmp_path):
    bad = tmp_path / "text.wav"
    bad.write_text("this is not audio")
    with pytest.raises(WavesmithError) as e:
        A.read(bad)
    assert "\n" not in str(e.value) and "text.wav" in str(e.value)


def test_mulaw_round_trip_error_is_within_one_quantization_step():
    x = torch.linspace(-1, 1, 10001)
    q = A.mulaw_encode(x)
    assert q.min() == 0 and q.max() == 255
    y = A.mulaw_decode(q)
    # a step of the companded grid at amplitude |x| is about (1 + 255|x|) ln(256) / 255 / 127.5
    step = (1 + 255 * x.abs()) * np.log(256) / 255 / 127.5
    assert torch.all((y - x).abs() <= step * 0.51 + 1e-6)


def test_log_mel_frame_count_and_peak_bin():
    rate, hop = 16000, 256
    x = torch.from_numpy(tone(2000, rate, 1.0).T.copy())
    mel = A.log_mel(x, rate, n_fft=1024, hop_length=hop, n_mels=80)
    assert mel.shape == (1, 80, rate // hop + 1)
    fb = A.mel_filterbank(rate, 1024, 80)
    expected = int(torch.argmax(fb[:, round(2000 / (rate / 1024))]))
    assert int(mel[0].mean(-1).argmax()) == expected


def test_spectrogram_png_is_a_valid_png():
    data = spectrogram_png(tone(440, 16000, 0.5).T, 16000, height=64)
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in data[-12:]


def test_a_spectrogram_picture_puts_a_tone_in_its_band_low_frequencies_at_the_bottom():
    from wavesmith.plot import spectrogram_rgb

    low, high = (spectrogram_rgb(tone(f, 16000, 0.5).T, 16000, height=64) for f in (300, 5000))
    assert low.shape[0] == 64 and low.shape[2] == 3 and low.dtype == np.uint8
    brightest = [int(img.astype(int).sum(-1).mean(1).argmax()) for img in (low, high)]
    assert brightest[0] > brightest[1]  # row 0 is the top of the picture


def test_as_written_is_what_write_then_read_gives(tmp_path):
    x = np.random.default_rng(0).uniform(-1.2, 1.2, (2, 1000)).astype(np.float32)
    A.write(tmp_path / "a.wav", x, 16000)
    y, _ = A.read(tmp_path / "a.wav")
    assert np.array_equal(A.as_written(x, 16000), y) and not np.array_equal(y, np.clip(x, -1, 1))
