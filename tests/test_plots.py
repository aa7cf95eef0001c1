"""Tests of the plot primitives (modarith.plotting.plots, the attention grid) and of
modarith.plotting.output.show on synthetic curves / best frames."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from modarith.plotting import attention, output, plots, style  # noqa: E402

STEPS = np.array([0, 1, 2, 5, 10, 50, 100, 200, 300, 400])
BASE_METRICS = ("train_loss", "val_loss", "train_acc", "val_acc", "param_norm")


def _curve(metric: str, scale: float) -> np.ndarray:
    t = STEPS / STEPS.max()
    if "loss" in metric:
        return 3.0 * np.exp(-5 * t * scale) + 1e-3
    if "acc" in metric:
        return 1 - np.exp(-4 * t * scale)
    return 20 + 5 * np.sin(3 * t) * scale


def curves_frame(by: dict[str, list] | None = None, models=("lstm", "gpt"),
                 metrics=BASE_METRICS) -> pd.DataFrame:
    """Long curves frame: model, by fields, step, metric, mean, std, n."""
    by = by or {}
    rows = []
    for model in models:
        for combo in itertools.product(*by.values()):
            values = dict(zip(by, combo))
            scale = 1 + sum(float(v) for v in combo) * 0.01
            for metric in metrics:
                mean = _curve(metric, scale)
                for step, m in zip(STEPS, mean):
                    rows.append({"model": model, **values, "step": int(step), "metric": metric,
                                 "mean": float(m), "std": 0.3 * float(m), "n": 2})
    return pd.DataFrame(rows)


def best_frame(by: dict[str, list], models=("lstm", "gpt"), with_p=False) -> pd.DataFrame:
    rows = []
    for model in models:
        for combo in itertools.product(*by.values()):
            values = dict(zip(by, combo))
            k = 1 + sum(float(v) for v in combo) * 0.05
            extra = {}
            if with_p:
                extra["P"] = int(1000 * k * values.get("d_model", 64) / 8)
            for q, val in (("L_train", 1e-3 / k), ("L_val", 0.5 / k),
                           ("A_train", 1.0), ("A_val", min(0.95, 0.5 * k))):
                rows.append({"model": model, **values, **extra, "quantity": q,
                             "best_mean": val, "best_std": 0.1 * val,
                             "tf_mean": 1000 * k, "tf_std": 50.0, "n": 2})
    return pd.DataFrame(rows)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _colorbars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _check_labels(fig):
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>" or not ax.axison:
            continue
        assert ax.get_ylabel(), f"empty y label on {ax.get_title()!r}"


def test_plot_train_val():
    fig, caption = plots.plot_train_val(curves_frame())
    assert len(fig.axes) == 4
    axes = np.array(fig.axes).reshape(2, 2)
    for ax in axes[0]:
        assert ax.get_yscale() == "log"
        assert len(ax.get_lines()) == 2
        colors = {line.get_color() for line in ax.get_lines()}
        assert colors == {style.TRAIN_COLOR, style.VAL_COLOR}
        assert ax.collections, "no std band"
    for ax in axes[1]:
        assert ax.get_xlabel()
    _check_labels(fig)
    assert "LSTM" in caption and "GPT" in caption and "2 seeds" in caption


def test_plot_train_val_ambiguous_raises():
    frame = curves_frame({"r_train": [0.3, 0.5]})
    with pytest.raises(ValueError, match="r_train"):
        plots.plot_train_val(frame)
    fig, caption = plots.plot_train_val(frame, fixed={"r_train": 0.5})
    assert "r_train = 0.5" in caption


def test_plot_train_val_per_order():
    metrics = [f"{s}_{k}_o{o}" for s in ("train", "val") for k in ("loss", "acc")
               for o in (2, 3)]
    fig, caption = plots.plot_train_val(curves_frame(metrics=metrics), ["gpt"], orders=(2, 3))
    assert len(fig.axes) == 4
    axes = np.array(fig.axes).reshape(2, 2)
    assert all(ax.get_yscale() == "log" for ax in axes[0])
    assert all(len(ax.get_lines()) == 2 for ax in axes.ravel())
    assert "binary" in axes[0, 0].get_title() and "ternary" in axes[0, 1].get_title()
    _check_labels(fig)
    assert "GPT" in caption and "binary (order 2)" in caption
    with pytest.raises(ValueError, match="_o2"):
        plots.plot_train_val(curves_frame(), ["gpt"], orders=(2, 3))
    with pytest.raises(ValueError, match="needs one model"):
        plots.plot_train_val(curves_frame(metrics=metrics), ["lstm", "gpt"], orders=(2, 3))


def test_plot_sweep_linear():
    values = [0.1, 0.3, 0.5, 0.7, 0.9]
    fig, caption = plots.plot_sweep(curves_frame({"r_train": values}), "lstm", "r_train")
    assert len(fig.axes) == 5  # 2x2 + colour bar
    assert len(_colorbars(fig)) == 1
    grid = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_yscale() for ax in grid] == ["log", "log", "linear", "linear"]
    assert all(len(ax.get_lines()) == len(values) for ax in grid)
    _check_labels(fig)
    assert "{0.1, 0.3, 0.5, 0.7, 0.9}" in caption and "LSTM" in caption


def test_plot_sweep_log2_with_fixed():
    frame = curves_frame({"num_layers": [1, 2, 3], "d_model": [64, 128, 256]})
    with pytest.raises(ValueError, match="num_layers"):
        plots.plot_sweep(frame, "gpt", "d_model")
    fig, caption = plots.plot_sweep(frame, "gpt", "d_model", fixed={"num_layers": 2})
    cbar_ax = _colorbars(fig)[0]
    labels = [t.get_text() for t in cbar_ax.get_yticklabels()]
    assert labels == ["$2^{6}$", "$2^{7}$", "$2^{8}$"]
    assert "2^6" in caption and "L = 2" in caption


def test_plot_sweep_param_norm_3x2():
    frame = curves_frame({"weight_decay": [0.25, 0.5, 0.75, 1.0]}, models=("lstm",))
    fig, caption = plots.plot_sweep(frame, "lstm", "weight_decay", metrics=BASE_METRICS)
    assert len(fig.axes) == 7  # 3x2 + colour bar
    grid = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert grid[4].get_ylabel() == grid[5].get_ylabel() == r"$\|\theta^{(t)}\|_2$"
    assert "0.25" in caption


def test_plot_sweep_bad_inputs():
    frame = curves_frame({"r_train": [0.5]})
    with pytest.raises(ValueError, match="by='d_model'"):
        plots.plot_sweep(frame, "lstm", "d_model")
    with pytest.raises(ValueError, match="model='mlp'"):
        plots.plot_sweep(frame, "mlp", "r_train")
    with pytest.raises(ValueError, match="lacks column"):
        plots.plot_sweep(frame.drop(columns="std"), "lstm", "r_train")


def test_plot_best():
    values = [0.1, 0.5, 0.9]
    fig, caption = plots.plot_best(best_frame({"r_train": values}), "gpt", "r_train")
    assert len(fig.axes) == 4  # two panels + two twin axes
    assert fig.axes[0].get_yscale() == "log"
    _check_labels(fig)
    assert "{0.1, 0.5, 0.9}" in caption and "GPT" in caption


def test_plot_best_log2():
    fig, caption = plots.plot_best(best_frame({"batch_size": [32, 64, 128]}), "lstm",
                                   "batch_size")
    assert fig.axes[0].get_xscale() == "log"
    assert "2^5" in caption


def test_plot_best_hue_by_field():
    frame = best_frame({"num_layers": [1, 2, 3], "d_model": [64, 128, 256]})
    fig, caption = plots.plot_best(frame, "lstm", "d_model", hue="num_layers")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(_colorbars(fig)) == 1 and len(panels) == 4  # 2 panels + 2 twins
    assert panels[0].get_yscale() == "log" and panels[0].get_xscale() == "log"  # log2 d
    # one best-value line per (L, split) in each panel: 3 depths x train/val
    assert len([ln for ln in panels[0].get_lines() if ln.get_marker() == "o"]) >= 6
    _check_labels(fig)
    assert "L ∈ {1, 2, 3}" in caption and "2^8" in caption
    with pytest.raises(ValueError, match="several values"):
        plots.plot_best(frame, "lstm", "d_model")  # L is not fixed


def test_plot_best_versus_params_log_axis():
    frame = best_frame({"num_layers": [1, 2], "d_model": [64, 128]}, with_p=True)
    fig, caption = plots.plot_best(frame, "gpt", "P")
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"
    _check_labels(fig)
    assert "log axis" in caption and "P ∈ {" in caption


def test_plot_best_alpha_hue():
    frame = best_frame({"batch_size": [32, 64, 128, 256], "alpha": [0.25, 0.5, 1.0]})
    fig, caption = plots.plot_best(frame, "gpt", "batch_size", hue="alpha")
    assert len(fig.axes) == 5  # 2 panels + 2 twins + colour bar
    assert len(_colorbars(fig)) == 1
    assert fig.axes[0].get_yscale() == "log"
    assert "α ∈ {0.25, 0.5, 1}" in caption and "2^8" in caption


def test_plot_attention_grid():
    rng = np.random.default_rng(0)
    L, H, S = 2, 3, 6
    w = rng.random((L, H, S, S))
    w = np.tril(w)
    w /= w.sum(-1, keepdims=True)
    tokens = ["BOS", "0", "+", "3", "=", "3"]
    fig, caption = attention.plot_attention_grid(w, tokens)
    heat = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(heat) == L * H and len(_colorbars(fig)) == 1
    ax = heat[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens
    assert [t.get_text() for t in ax.get_yticklabels()] == tokens
    assert ax.get_title() == "Layer 1, Head 1"
    assert len(ax.texts) == S * S
    assert heat[-1].get_title() == f"Layer {L}, Head {H}"
    assert "BOS 0 + 3 = 3" in caption
    fig2, _ = attention.plot_attention_grid(w, tokens, layers=[1], heads=[0])
    assert len(fig2.axes) == 2
    with pytest.raises(ValueError, match="tokens"):
        attention.plot_attention_grid(w, tokens[:-1])
    with pytest.raises(ValueError, match="shape"):
        attention.plot_attention_grid(w[0], tokens)


def test_show_saves_png_svg_and_displays_one_html_figure(tmp_path, monkeypatch, capsys):
    import base64

    fig, caption = plots.plot_train_val(curves_frame())
    shown = []
    monkeypatch.setattr("IPython.get_ipython", lambda: object())
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append((obj, raw)))
    paths = output.show(fig, caption + " <b>", tmp_path / "exp", "train_val", dpi=40, formats=("png", "svg"))
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == ["train_val.png", "train_val.svg"]
    ((bundle, raw),) = shown  # one display: a raw MIME bundle with the PNG and the captioned HTML
    assert raw and set(bundle) == {"image/png", "text/html", "text/plain"}
    assert base64.b64decode(bundle["image/png"]) == (tmp_path / "exp" / "train_val.png").read_bytes()
    assert hasattr(paths, "_ipython_display_") and paths == [tmp_path / "exp" / "train_val.png",
                                                             tmp_path / "exp" / "train_val.svg"]
    html = bundle["text/html"]
    assert html.startswith('<figure class="modarith-figure"><img src="data:image/png;base64,')
    png = base64.b64decode(html.split("base64,")[1].split('"')[0])
    assert png == (tmp_path / "exp" / "train_val.png").read_bytes()
    assert html.endswith(" &lt;b&gt;</figcaption></figure>")  # caption escaped
    assert not plt.get_fignums()  # closed
    monkeypatch.setattr("IPython.get_ipython", lambda: None)
    fig, caption = plots.plot_train_val(curves_frame())
    output.show(fig, caption, None)
    assert capsys.readouterr().out.startswith("LSTM and GPT")
