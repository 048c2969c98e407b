"""Every sampler widget follows the sidebar model: a model change writes the new model's stored settings into them.

A keyed Streamlit widget keeps its value across reruns, and ``value=``/``index=`` only apply the first time it
is drawn, so without this a switch from ``student`` to ``antibody-student`` would keep sampling ancestrally at
τ 0 while the model's own (validated) setting is confidence-ordered τ 0.1. The settings come from the one rule
the CLI uses (:meth:`ProteinRequest.recommended`: the checkpoint's stored ``sampling``, else its role's defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from protein_didi.protein.pretrained import LoadedModel, is_antibody_model
from protein_didi.protein.request import ProteinRequest
from protein_ui.common import DEFAULT_LENGTH

ANTIBODY_LENGTH = 120  # a V domain with a little margin: what the README's antibody commands sample
TEMPERATURE_RANGE = (0.1, 2.0)
ORDER_TEMPERATURE_RANGE = (0.0, 4.0)
TOP_P_RANGE = (0.05, 1.0)
FRACTION_RANGE = (0.05, 0.95)
WIDGETS = {  # request field → the Generate tab's widget key
    "nfe": "gen_nfe",
    "sampler": "gen_sampler",
    "temperature": "gen_temperature",
    "top_p": "gen_top_p",
    "order_temperature": "gen_order_temperature",
    "corrector_steps": "gen_corrector_steps",
    "corrector_fraction": "gen_corrector_fraction",
    "corrector_temperature": "gen_corrector_temperature",
    "corrector_pick": "gen_corrector_pick",
}
STATE_OF = "gen_settings_of"  # which model the widgets currently hold the settings of


def antibody(loaded: LoadedModel | None) -> bool:
    return loaded is not None and is_antibody_model(loaded.info)


def _clamp(value: Any, bounds: tuple[float, float]) -> float:
    return float(min(max(float(value), bounds[0]), bounds[1]))


def widget_values(loaded: LoadedModel) -> dict[str, Any]:
    """The Generate tab's widget values for ``loaded``: its stored sampler settings, fitted to the widgets' ranges."""
    own: Mapping[str, Any] = ProteinRequest.recommended(loaded.info, loaded.role)
    sampler = own["sampler"] if own["sampler"] != "rgas" or loaded.has_discriminator else "ancestral"
    return {
        "gen_nfe": int(own["nfe"]),
        "gen_sampler": sampler,
        "gen_temperature": _clamp(own["temperature"], TEMPERATURE_RANGE),
        "gen_top_p": _clamp(own["top_p"], TOP_P_RANGE),
        "gen_order_temperature": _clamp(own["order_temperature"], ORDER_TEMPERATURE_RANGE),
        "gen_corrector_steps": int(own["corrector_steps"]),
        "gen_corrector_fraction": _clamp(own["corrector_fraction"], FRACTION_RANGE),
        "gen_corrector_temperature": _clamp(own["corrector_temperature"], TEMPERATURE_RANGE),
        "gen_corrector_pick": own["corrector_pick"],
        "gen_length": ANTIBODY_LENGTH if antibody(loaded) else DEFAULT_LENGTH,
        "gen_valid_only": True,
    }


def follow_model(name: str, loaded: LoadedModel | None) -> bool:
    """On a change of the sidebar model, reset every sampler widget (and the length and structure source) to the
    new model's; True when it did. Call before the widgets are drawn in this script run."""
    if loaded is None:
        return False
    identity = (name, loaded.name, loaded.role)
    drawn = all(key in st.session_state for key in WIDGETS.values())  # a tab not drawn last run lost its widgets
    if st.session_state.get(STATE_OF) == identity and drawn:
        return False
    st.session_state[STATE_OF] = identity
    for key, value in widget_values(loaded).items():
        st.session_state[key] = value
    st.session_state["gen_length_mode"] = "Fixed"
    from protein_ui.structure_tab import ESMFOLD_OPTION, IGFOLD_OPTION  # the Structure tab opens on the right folder

    st.session_state["fold_source"] = IGFOLD_OPTION if antibody(loaded) else ESMFOLD_OPTION
    return True


def initial(key: str, value: Any) -> Any:
    """``value`` as a widget's default, or None once the Session State holds the widget's value (which wins anyway;
    a default beside it only makes Streamlit log a warning)."""
    return None if key in st.session_state else value


def describe(request: ProteinRequest) -> str:
    """``confidence τ 0.1 · 8 steps · T 1 · top-p 1`` (+ corrector rounds): what a filled request samples with."""
    text = f"{request.sampler}"
    if request.sampler == "confidence":
        text += f" τ {request.order_temperature:g}"
    text += f" · {request.nfe} steps · T {request.temperature:g} · top-p {request.top_p:g}"
    if request.corrector_steps:
        text += (
            f" + {request.corrector_steps} corrector rounds (ρ {request.corrector_fraction:g}, "
            f"T {request.corrector_temperature:g}, {request.corrector_pick})"
        )
    return text


def stored_settings(loaded: LoadedModel) -> str:
    """What ``loaded`` samples with when nothing is set: the settings the widgets reset to."""
    return describe(ProteinRequest(num=1).for_model(loaded.info, loaded.role))
