"""The nplsim policy lab: Mesa's ``SolaraViz`` over the NPL market, served by ``nplsim viz``.

Pick a scenario, override the key levers of its legal regime, set a macro shock, the size of the
economy and the seed, press Reset and play; "Reform now" changes the law of the running model from
the next quarter on. ``SolaraViz`` drives a :class:`PolicyLab`, which turns the controls into an
:class:`~market.model.NPLMarketModel` or, for an invalid combination, into a model-less state that
shows the validation message instead of a traceback.
"""

# Solara components are named like classes (Solara and Mesa convention).
# ruff: noqa: N802

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import mesa
import solara
from mesa.visualization import SolaraViz

from nplsim.economy.model import NPLMarketModel
from nplsim.experiments import seeds
from nplsim.market.errors import ConfigError
from nplsim.market.regime import InvestorClass, LegalRegime, field_bounds
from nplsim.market.scenario import DEFAULT_SCENARIO, list_scenarios, load_scenario
from nplsim.viz import components

DEFAULT_SEED = 42
DEFAULT_N_LOANS = 100_000  # the default scenario's size
SHOCK_Z_LIMIT = 4.0  # the scenario schema allows |z| <= 6; 4 is already a deep recession
INVESTOR_BASES: dict[str, tuple[str, ...]] = {
    "interbank institutions (2005)": ("bank_treasury", "insurer", "mutual_fund"),
    "domestic incl. distressed funds": (
        "bank_treasury", "insurer", "mutual_fund", "distressed_fund",
    ),
    "domestic + foreign (2016)": (
        "bank_treasury", "insurer", "mutual_fund", "distressed_fund", "qfii",
    ),
    "all incl. retail": get_args(InvestorClass),
    "none": (),
}  # fmt: skip
LEVER_FIELDS = (
    "securitisation_allowed",
    "spv_form",
    "bankruptcy_remoteness",
    "investor_protection",
    "disclosure_level",
    "debtor_notice",
    "risk_retention",
    "derecognition_allowed",
    "state_guarantee_scheme",
    "enforcement_efficiency",
)


def _investor_base_of(classes: tuple[str, ...]) -> str:
    return next(
        (name for name, base in INVESTOR_BASES.items() if set(base) == set(classes)),
        next(iter(INVESTOR_BASES)),
    )


def _lever_param(field: str, default: Any) -> dict[str, Any]:
    """A SolaraViz control for one regime field, within the field's valid range."""
    label = field.replace("_", " ")
    annotation = LegalRegime.model_fields[field].annotation
    if annotation is bool:
        return {"type": "Checkbox", "value": default, "label": label}
    if getattr(annotation, "__origin__", None) is Literal:
        return {"type": "Select", "value": default, "values": list(get_args(annotation)),
                "label": label}  # fmt: skip
    low, high, _, _ = field_bounds(field)
    step = 0.1 if high > 1 else (0.01 if high <= 0.5 else 0.05)
    return {"type": "SliderFloat", "value": float(default), "min": low, "max": high,
            "step": step, "label": label}  # fmt: skip


def build_model_params(scenario: str = DEFAULT_SCENARIO) -> dict[str, dict[str, Any]]:
    """The page's controls; lever defaults are the regime preset of ``scenario``."""
    config, regime = load_scenario(scenario)
    params: dict[str, dict[str, Any]] = {
        "scenario_name": {"type": "Select", "value": scenario, "values": list_scenarios(),
                          "label": "scenario (and its regime preset)"},
        "rng": {"type": "InputText", "value": str(DEFAULT_SEED), "label": "seed (integer)"},
        "n_loans": {"type": "SliderInt", "value": DEFAULT_N_LOANS, "min": 5_000,
                    "max": 1_000_000, "step": 5_000, "label": "loan slots (scenario size)"},
        "shock_z": {"type": "SliderFloat", "value": 0.0, "min": -SHOCK_Z_LIMIT,
                    "max": SHOCK_Z_LIMIT, "step": 0.25,
                    "label": "macro shock to Z (0 = none, < 0 = recession)"},
        "shock_quarter": {"type": "SliderInt", "value": 8, "min": 1,
                          "max": max(config.quarters, 1), "step": 1,
                          "label": "quarter of the macro shock"},
        "custom_law": {"type": "Checkbox", "value": False,
                       "label": "override the preset with the levers below"},
    }  # fmt: skip
    for field in LEVER_FIELDS:
        params[field] = _lever_param(field, getattr(regime, field))
        if field == "debtor_notice":
            params["investor_base"] = {
                "type": "Select",
                "value": _investor_base_of(regime.investor_classes_allowed),
                "values": list(INVESTOR_BASES),
                "label": "investor classes allowed",
            }
    return params


MODEL_PARAMS = build_model_params()
DEFAULTS = {name: spec["value"] for name, spec in MODEL_PARAMS.items()}


def parse_seed(value: object) -> int:
    """The seed control's value as a seed (the control sends text), checked like every seed.

    Raises:
        ConfigError: not a whole number in ``[0, 2**63)``.
    """
    return seeds.parse_seed(value, "controls", "seed")


def lab_overrides(
    scenario_name: str,
    *,
    n_loans: int,
    shock_quarter: int,
    shock_z: float,
    custom_law: bool,
    investor_base: str,
    **levers: Any,
) -> dict[str, Any]:
    """``NPLMarketModel`` overrides for the controls' values.

    The macro shock is added to the scenario's own shocks; the regime levers replace the preset's
    values only when ``custom_law`` is set.
    """
    overrides: dict[str, Any] = {"n_loans": int(n_loans)}
    if shock_z:
        config, _ = load_scenario(scenario_name)
        shocks = [s.model_dump() for s in config.macro.shocks]
        overrides["macro__shocks"] = [*shocks, {"quarter": int(shock_quarter), "z": shock_z}]
    if custom_law:
        classes = INVESTOR_BASES[investor_base]
        overrides.update(levers)
        overrides["investor_classes_allowed"] = list(classes)
        overrides["foreign_investors_allowed"] = "qfii" in classes
    return overrides


class PolicyLab(mesa.Model):
    """What ``SolaraViz`` drives: the controls' ``NPLMarketModel``, or the reason there is none.

    Mesa's Reset calls this class with the controls' values as keyword arguments. A
    :class:`ConfigError` (a contradictory regime, a bad seed) leaves ``market`` as ``None`` and the
    message in ``config_error``, which the page shows.
    """

    def __init__(
        self,
        *,
        scenario_name: str = DEFAULTS["scenario_name"],
        rng: int | str = DEFAULTS["rng"],
        n_loans: int = DEFAULTS["n_loans"],
        shock_quarter: int = DEFAULTS["shock_quarter"],
        shock_z: float = DEFAULTS["shock_z"],
        custom_law: bool = DEFAULTS["custom_law"],
        investor_base: str = DEFAULTS["investor_base"],
        securitisation_allowed: bool = DEFAULTS["securitisation_allowed"],
        spv_form: str = DEFAULTS["spv_form"],
        bankruptcy_remoteness: float = DEFAULTS["bankruptcy_remoteness"],
        investor_protection: float = DEFAULTS["investor_protection"],
        disclosure_level: float = DEFAULTS["disclosure_level"],
        debtor_notice: str = DEFAULTS["debtor_notice"],
        risk_retention: float = DEFAULTS["risk_retention"],
        derecognition_allowed: bool = DEFAULTS["derecognition_allowed"],
        state_guarantee_scheme: bool = DEFAULTS["state_guarantee_scheme"],
        enforcement_efficiency: float = DEFAULTS["enforcement_efficiency"],
    ):
        self.market: NPLMarketModel | None = None
        self.config_error: str | None = None
        try:
            seed = parse_seed(rng)
        except ConfigError as exc:
            seed, self.config_error = 0, str(exc)
        super().__init__(rng=seed)
        if self.config_error is not None:
            self.running = False
            return
        levers = {
            "securitisation_allowed": securitisation_allowed,
            "spv_form": spv_form,
            "bankruptcy_remoteness": bankruptcy_remoteness,
            "investor_protection": investor_protection,
            "disclosure_level": disclosure_level,
            "debtor_notice": debtor_notice,
            "risk_retention": risk_retention,
            "derecognition_allowed": derecognition_allowed,
            "state_guarantee_scheme": state_guarantee_scheme,
            "enforcement_efficiency": enforcement_efficiency,
        }
        try:
            overrides = lab_overrides(
                scenario_name,
                n_loans=n_loans,
                shock_quarter=shock_quarter,
                shock_z=shock_z,
                custom_law=custom_law,
                investor_base=investor_base,
                **levers,
            )
            self.market = NPLMarketModel(scenario=scenario_name, rng=seed, **overrides)
        except ConfigError as exc:
            self.config_error = str(exc)
            self.running = False

    def step(self) -> None:
        """One quarter of the market, if there is one."""
        if self.market is None:
            return
        self.market.step()
        self.running = self.market.running


# ---------------------------------------------------------------------- the page
@solara.component
def NoModel() -> None:
    """Where a view would be when the controls do not describe a valid model."""
    solara.Text("No model: see the message above, change the controls and press Reset.")


def _view(component: Callable[..., Any]) -> Callable[[PolicyLab], Any]:
    """Adapt a view of ``NPLMarketModel`` to the ``PolicyLab`` that SolaraViz passes."""

    def view(lab: PolicyLab):
        return component(lab.market) if lab.market is not None else NoModel()

    view.__name__ = component.__name__
    return view


def headline(lab: PolicyLab):
    """KPI cards, or the validation message when there is no model."""
    if lab.market is None:
        return solara.Error(
            f"Invalid controls: {lab.config_error}", classes=["nplsim-config-error"]
        )
    return components.KpiCards(lab.market)


VIEWS = [
    (headline, 0),
    (_view(components.LawPanel), 0),
    (_view(components.BalanceSheetView), 0),
    (_view(components.BankRatiosView), 0),
    (_view(components.DisposalView), 0),
    (_view(components.AbsMarketView), 0),
    (_view(components.DealsView), 1),
    (_view(components.NetworkView), 1),
]


@solara.component
def Page() -> None:
    """One lab per browser session, so sessions do not step each other's model."""
    lab = solara.use_memo(PolicyLab, [])
    SolaraViz(
        lab,
        components=VIEWS,
        model_params=MODEL_PARAMS,
        name="nplsim policy lab",
        play_interval=150,
    )


page = Page
