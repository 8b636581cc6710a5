"""The app's accent colour (Streamlit's primary colour, .streamlit/config.toml) is no verdict's colour.

Streamlit's default primary is red, and red means "No mask" here: sliders, toggles, focus rings, primary
buttons and picked pills all read as a verdict. test_browser.py checks the colour a page draws."""

from __future__ import annotations

import colorsys
import tomllib

import pytest

from maskapp import PROJECT_ROOT
from maskapp.vision.draw import LABEL_STYLES

CONFIG = PROJECT_ROOT / ".streamlit" / "config.toml"
MIN_HUE_DEGREES = 40  # amber (45°) and red (0°) are 45° apart: a hue nearer a verdict reads as it
MIN_CONTRAST = 3.0  # WCAG's least for a control's outline against what is around it


def rgb(hex_color: str) -> tuple[float, float, float]:
    text = hex_color.lstrip("#")
    return tuple(int(text[i : i + 2], 16) / 255 for i in (0, 2, 4))


def hue_degrees(hex_color: str) -> float:
    return colorsys.rgb_to_hsv(*rgb(hex_color))[0] * 360


def hue_distance(a: str, b: str) -> float:
    apart = abs(hue_degrees(a) - hue_degrees(b)) % 360
    return min(apart, 360 - apart)


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""

    def luminance(color: str) -> float:
        channels = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb(color)]
        return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def primary_colors() -> dict[str, str]:
    """The primary colour of each theme the config sets: light and dark (a reader's system picks)."""
    theme = tomllib.loads(CONFIG.read_text())["theme"]
    return {base: theme[base]["primaryColor"] for base in ("light", "dark")}


def verdict_too_near(color: str) -> list[str]:
    """The verdicts whose colour `color`'s hue is within MIN_HUE_DEGREES of."""
    return [
        label for label, style in LABEL_STYLES.items() if hue_distance(color, style.hex) < MIN_HUE_DEGREES
    ]


@pytest.mark.parametrize("base", ["light", "dark"])
def test_the_primary_colour_is_no_verdicts_colour(base):
    color = primary_colors()[base]
    assert verdict_too_near(color) == [], f"{base} primary {color} reads as a verdict"
    # Primary buttons and picked pills write white on it.
    assert contrast(color, "#ffffff") >= MIN_CONTRAST


def test_the_verdict_check_catches_streamlits_red():
    """The check above is no formality: Streamlit's own primary and the verdicts' colours fail it."""
    for red in ("#ff4b4b", "#c53948", "#cf4250"):
        assert "without_mask" in verdict_too_near(red)
    for style in LABEL_STYLES.values():
        assert verdict_too_near(style.hex)
