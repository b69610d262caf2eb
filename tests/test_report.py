"""The comparison figure: a valid PNG of the documented size, truth shown with row 0 at the top."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.report import comparison_figure_size_px, save_comparison_figure


def _png_size(path):
    blob = path.read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    assert blob[12:16] == b"IHDR"
    width, height = struct.unpack(">II", blob[16:24])
    assert blob[-8:-4] == b"IEND"
    return width, height


def _truth(n=64):
    y, x = np.mgrid[:n, :n]
    img = np.zeros((n, n))
    img[: n // 2, : n // 2] = 1.0  # bright top-left quadrant (anterior, patient's right)
    img += 0.2 * (((y - n / 2) ** 2 + (x - n / 2) ** 2) < (n / 3) ** 2)
    return img


def test_png_written_with_expected_size(tmp_path):
    rng = np.random.default_rng(0)
    truth = _truth()
    recons = {"zero-filled": truth + 0.05 * rng.standard_normal(truth.shape), "sense": truth * 0.99}
    given = {name: {"nmse": 0.1, "psnr": 30.0, "ssim": 0.9} for name in recons}
    out = save_comparison_figure(truth, recons, tmp_path / "fig.png", title="GRE 7T R=4", metrics=given)
    assert out == tmp_path / "fig.png"
    assert _png_size(out) == comparison_figure_size_px(2, title=True) == (900, 815)
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_orientation_and_given_metrics(tmp_path):
    import matplotlib.image as mpimg

    truth = _truth()
    out = save_comparison_figure(
        truth, {"fft": truth}, tmp_path / "f.png", metrics={"fft": {"nmse": 0.0, "psnr": 99.0, "ssim": 1.0}}
    )
    width, height = _png_size(out)
    assert (width, height) == comparison_figure_size_px(1, title=False)
    pixels = mpimg.imread(out)[..., :3].mean(-1)
    truth_panel = pixels[: height // 2, : width // 2]
    bright = truth_panel > 0.7  # the quadrant (value 1.0 on the 0..1.2 display scale); text is thinner than 20 px
    rows = np.nonzero(bright.sum(1) > 20)[0]
    cols = np.nonzero(bright.sum(0) > 20)[0]
    # the bright quadrant is drawn in the upper-left part of the truth panel (row 0 at the top, column 0 left)
    assert rows.max() < height / 4 and cols.max() <= width / 4
    assert truth_panel[rows.max() + 40, cols.max() - 40] > 0.1  # below the quadrant: the grey disc
    # identical recon -> error panel (bottom right) is black
    assert pixels[height // 2 + 60 : height - 80, width // 2 + 20 : width - 20].max() < 0.05


def test_bad_inputs(tmp_path):
    with pytest.raises(ConfigError):
        save_comparison_figure(np.zeros((4, 4)), {"a": np.zeros((4, 5))}, tmp_path / "x.png")
    with pytest.raises(ConfigError):
        save_comparison_figure(np.zeros((4, 4, 4)), {"a": np.zeros((4, 4, 4))}, tmp_path / "x.png")
    with pytest.raises(ConfigError):
        save_comparison_figure(np.zeros((4, 4)), {}, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_metrics_computed_when_missing(tmp_path, monkeypatch):
    import hifield.report as report

    seen = {}

    def spy(truth, recon):
        values = original(truth, recon)
        seen[float(recon.mean())] = values
        return values

    original = report._metrics
    monkeypatch.setattr(report, "_metrics", spy)
    truth = _truth(32)
    save_comparison_figure(truth, {"a": truth * 0.5, "b": truth}, tmp_path / "m.png", metrics={"b": {"nmse": 0.0}})
    assert len(seen) == 1  # only "a" was missing
    (values,) = seen.values()
    assert values["nmse"] == pytest.approx(0.25)  # ||t - t/2||^2 / ||t||^2
    assert values["ssim"] < 1.0 and values["psnr"] > 0


def test_html_report_embeds_figure_and_tables(tmp_path):
    import base64
    from html.parser import HTMLParser

    from hifield.report import write_html_report

    truth = _truth(32)
    png = save_comparison_figure(truth, {"fft": truth}, tmp_path / "f.png", metrics={"fft": {"nmse": 0.0}})
    out = write_html_report(
        tmp_path / "report.html",
        title="gre_t1_2d at 7 T",
        figure=png,
        metrics={"fft": {"nmse": 0.0123, "psnr": 31.5}, "sense": {"nmse": 0.004, "ssim": 0.93}},
        facts={"B0 [T]": 7.0, "protocol": "gre_t1_2d"},
    )

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.cells, self.images = [], []

        def handle_data(self, data):
            self.cells.append(data)

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.images.append(dict(attrs)["src"])

    parser = Collect()
    parser.feed(out.read_text())
    assert "0.0123" in parser.cells and "31.5" in parser.cells and "0.93" in parser.cells and "7" in parser.cells
    (src,) = parser.images
    assert base64.b64decode(src.split(",", 1)[1]) == png.read_bytes()
