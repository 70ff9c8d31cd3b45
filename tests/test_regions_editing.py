"""Regions, presets, edits, PNG grids and the locality metrics."""

import numpy as np
import pytest

import jaxedit
from jaxedit import regions
from jaxedit.editing import draw_box, edit_latents, render_edits
from jaxedit.metrics import locality


def test_reference_box_convention_and_presets():
    eyes = regions.preset("ffhq/eyes")
    assert eyes.as_tuple() == (110, 71, 130, 186) and eyes.grid == 256  # rows 110..129
    m = eyes.mask(256)
    assert m.sum() == 20 * 115 and m[110, 71] and not m[130, 71] and not m[109, 100]
    assert regions.preset("biggan/head0") == regions.center_box(89, 115, 49, 70)
    assert regions.center_box(120, 128, 20, 115) == eyes
    names = regions.preset_names()
    assert len([n for n in names if not n.startswith("toyfaces/")]) == 18
    assert {"toyfaces/eyes", "toyfaces/mouth", "toyfaces/nose"} <= set(names)
    with pytest.raises(ValueError, match="unknown region"):
        regions.preset("ffhq/ears")


def test_short_region_names_resolve_by_preset_set_or_are_refused():
    # "eyes" is both an FFHQ box and a toy-face mask: refused with both candidates ...
    with pytest.raises(jaxedit.AmbiguousRegionError, match="'ffhq/eyes' or 'toyfaces/eyes'"):
        regions.preset("eyes")
    with pytest.raises(jaxedit.AmbiguousRegionError):
        regions.region_mask("mouth", 64)
    # ... resolved by the generator's preset set
    assert regions.preset("eyes", prefer="toyfaces").name == "toyfaces/eyes"
    assert regions.preset("eyes", prefer="ffhq") == regions.center_box(120, 128, 20, 115)
    assert regions.parse_region("mouth", prefer="toyfaces").name == "toyfaces/mouth"
    # a name only one set has needs no preference; an irrelevant preference changes nothing
    assert regions.preset("head0") == regions.preset("biggan/head0")
    assert regions.preset("head0", prefer="toyfaces") == regions.preset("biggan/head0")
    assert regions.preset("hair").name == "toyfaces/hair"
    assert regions.preset_set("stylegan2", source_format="toyfaces") == "toyfaces"
    assert regions.preset_set("biggan") == "biggan"
    assert regions.preset_set("stylegan2") == "ffhq"
    # an unknown name suggests the nearest names, not the whole list
    with pytest.raises(ValueError) as e:
        regions.preset("eys")
    msg = str(e.value)
    assert "did you mean 'eyes'" in msg and "jaxedit regions" in msg and "ffhqu/eyest0," not in msg


def test_regions_resample_to_the_grid():
    eyes = regions.preset("ffhq/eyes")
    small = jaxedit.region_mask(eyes, 64)
    rows, cols = np.nonzero(small)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (27, 33, 17, 47)
    big = jaxedit.region_mask(eyes, 1024)
    assert big.sum() == 16 * eyes.mask(256).sum()
    # a mask is resampled by nearest neighbour at pixel centres
    m = np.zeros((4, 4), bool)
    m[1, 2] = True
    up = jaxedit.region_mask(m, 8)
    assert up.sum() == 4 and up[2:4, 4:6].all()
    assert jaxedit.region_mask((1, 2, 3, 5), 8).sum() == 6
    assert regions.parse_region("1,2,3,5").as_tuple() == (1, 2, 3, 5)
    with pytest.raises(ValueError, match="2-D"):
        jaxedit.region_mask(np.zeros(5, bool), 8)
    with pytest.raises(ValueError, match="empty"):
        jaxedit.region_mask((3, 3, 2, 5), 8)


def test_resample_rules_one_home():
    """jaxedit._resample holds the three 1-D rules (input size first, ``[n_out, n_in]``): both
    averaging matrices are NumPy block means when one size divides the other, and differ (as
    before the move) only on non-integer ratios; the toyfaces presets use the exact coverage."""
    from jaxedit import _resample

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 12)
    for n_out in (1, 2, 3, 4, 6, 12):  # down: block means
        block = x.reshape(n_out, 12 // n_out).mean(1)
        for f in (_resample.area_matrix, _resample.coverage_matrix):
            P = f(12, n_out)
            assert P.shape == (n_out, 12)
            np.testing.assert_allclose(P @ x, block, rtol=1e-14)
    for n_out in (24, 36):  # up: repeat (= nearest)
        for f in (_resample.area_matrix, _resample.coverage_matrix):
            np.testing.assert_allclose(f(12, n_out) @ x, np.repeat(x, n_out // 12), rtol=1e-14)
        np.testing.assert_array_equal(
            _resample.nearest_index(12, n_out), np.repeat(np.arange(12), n_out // 12)
        )
    np.testing.assert_array_equal(_resample.nearest_index(5, 3), [0, 1, 3])
    # 5 -> 3: adaptive pooling averages whole pixels, coverage weighs partial ones
    np.testing.assert_allclose(
        _resample.area_matrix(5, 3),
        [[1 / 2, 1 / 2, 0, 0, 0], [0, 1 / 3, 1 / 3, 1 / 3, 0], [0, 0, 0, 1 / 2, 1 / 2]],
        rtol=1e-14,
    )
    np.testing.assert_allclose(
        _resample.coverage_matrix(5, 3),
        [[0.6, 0.4, 0, 0, 0], [0, 0.2, 0.6, 0.2, 0], [0, 0, 0, 0.4, 0.6]],
        atol=1e-14,
    )
    # 2-D masks: resize_masks "area" is the block mean; a preset at half a cell's coverage
    m = rng.uniform(0, 1, (2, 8, 12))
    np.testing.assert_allclose(
        np.asarray(_resample.resize_masks(m, (4, 3), "area")),
        m.reshape(2, 4, 2, 3, 4).mean((2, 4)),
        rtol=1e-12,
    )
    toy = regions.preset("toyfaces/eyes")
    full = (toy.frequency >= toy.threshold).astype(np.float64)
    g = full.shape[0]
    half = full.reshape(g // 2, 2, g // 2, 2).mean((1, 3)) >= 0.5 - 1e-9
    np.testing.assert_array_equal(toy.mask(g // 2), half)


def test_edit_latents_slots_and_spaces():
    ws = np.zeros((2, 6, 4))
    d = np.arange(4.0)
    out = edit_latents(ws, d, [-1.0, 2.0], slots=[1, 3])
    assert out.shape == (2, 2, 6, 4)
    np.testing.assert_array_equal(out[1, 0, 3], 2 * d)
    np.testing.assert_array_equal(out[1, 0, 0], 0)
    dp = np.arange(24.0)
    outp = edit_latents(ws, dp, [1.0], space="wplus", slots=[5])
    np.testing.assert_array_equal(outp[0, 1, 5], dp[20:24])
    np.testing.assert_array_equal(outp[0, 1, :5], 0)
    assert edit_latents(np.zeros((3, 5)), np.ones(5), [0.0, 1.0], space="z").shape == (2, 3, 5)
    with pytest.raises(ValueError, match=r"\[4\]"):
        edit_latents(ws, np.ones(5), [1.0])
    with pytest.raises(ValueError, match="slots"):
        edit_latents(ws, d, [1.0], slots=[6])


def test_render_edits_and_grid(tmp_path, small_gen):
    from PIL import Image

    ws = np.asarray(small_gen.mapping(np.random.RandomState(0).randn(3, 8)))
    d = np.random.RandomState(1).randn(8)
    imgs = render_edits(small_gen, ws, d, [-2.0, 0.0, 2.0], slots=[2, 3])
    assert imgs.shape == (3, 3, 16, 16, 3)
    np.testing.assert_allclose(imgs[1], small_gen.synthesis(ws), atol=1e-12)
    assert np.abs(imgs[2] - imgs[1]).max() > 1e-3
    path = jaxedit.save_edit_grid(imgs, tmp_path / "g.png", region=(4, 4, 8, 12))
    png = np.asarray(Image.open(path))
    assert png.shape == (3 * 16, 3 * 16, 3)
    assert (png[4, 4:12] == [255, 0, 0]).all()  # the box's top edge on the first tile
    z_imgs = render_edits(
        small_gen, np.random.RandomState(0).randn(2, 8), np.ones(8), [0.0], space="z"
    )
    np.testing.assert_allclose(
        z_imgs[0], small_gen(np.random.RandomState(0).randn(2, 8)), atol=1e-12
    )


def test_draw_box_does_not_modify_input():
    img = np.zeros((1, 8, 8, 3), np.uint8)
    out = draw_box(img, (2, 2, 6, 6))
    assert img.max() == 0 and out[0, 2, 3, 0] == 255 and out[0, 4, 4, 0] == 0


def test_locality_metrics():
    x0 = np.zeros((2, 8, 8, 3))
    x1 = x0.copy()
    x1[:, 2:4, 2:4] = 1.0  # change only inside
    x1[1, 7, 7] = 0.5  # and a little outside on sample 1
    m = locality(x0, x1, (2, 2, 4, 4))
    assert m["mse_inside"] == pytest.approx(1.0)
    assert m["mse_outside"] == pytest.approx(0.5 * 0.25 * 3 / (60 * 3))
    assert m["roir_per_sample"][0] == 0.0
    assert m["roir_per_sample"][1] == pytest.approx(np.sqrt(3 * 0.25) / np.sqrt(12))
    assert m["roir"] == pytest.approx(np.mean(m["roir_per_sample"]))
    with pytest.raises(ValueError, match="both"):
        locality(x0, x1[:1], (2, 2, 4, 4))
