"""What the ODD description says in words where the code has no docstring to say it: what each
random stream drives, what each model column means and its unit, what each output file holds, what
each scenario parameter is. ``nplsim.experiments.odd`` writes them into ``docs/ODD.md``, and its
test fails when something the code has is not described here."""

from __future__ import annotations

# What each random stream of ``nplsim.market.streams.STREAMS`` drives, and whether it is drawn in
# full every quarter (so two regimes with the same seed see the same numbers: common random
# numbers).
STREAM_NOTES: dict[str, tuple[str, str]] = {
    "init": (
        "Opening loan book: segment, seasoning, size and collateral of every slot, which loans "
        "start as NPLs and how old they are, borrowers' workout quality.",
        "once, at set-up",
    ),
    "macro": ("The innovation ε_t of the AR(1) systematic factor Z_t.", "one draw a quarter"),
    "defaults": (
        "Idiosyncratic asset shock ε = Φ⁻¹(u) of every loan slot in the Vasicek default test "
        "(inverted only where u is below the largest conditional PD).",
        "one uniform per slot a quarter (full length)",
    ),
    "recoveries": (
        "Whether each NPL is resolved this quarter (compared with 1 − e^(−hazard)).",
        "one key a quarter; each NPL slot's uniform is a function of the key and the slot "
        "(nplsim.market.slotdraws)",
    ),
    "lending": (
        "Segment and collateralisation of each loan written into a freed slot.",
        "one key a quarter; each freed slot's two uniforms are a function of the key and the "
        "slot (nplsim.market.slotdraws)",
    ),
    "behaviour": (
        "Choices and frictions of agents and markets: carve-out selection, AMC bid noise, "
        "investors' yield noise, the recharacterisation test, secondary-market liquidity shocks "
        "and valuations.",
        "as many as the quarter needs (diverges between regimes)",
    ),
    "quality": (
        "Workout quality of each new NPL (lognormal, mean 1).",
        "one normal per new default",
    ),
    "power": (
        "Power sector: the fleet and the opening plant loans at set-up; each quarter the coal "
        "innovation (phase 2, with the other systematic shocks), then plants' hours, project "
        "arrival and size, collateral, default quality and legal draws.",
        "1 + 6 × plants a quarter (full length)",
    ),
    "signals": (
        "Disclosure noise ζ of each NPL: what the disclosed data say about the borrower's workout "
        "quality beyond the quality itself (LoanBook.public_quality).",
        "one key at set-up; each NPL's normal is a function of the key, its slot and its default "
        "quarter (nplsim.market.slotdraws)",
    ),
}

# Meaning and unit of every column of ``model.parquet``
# (``nplsim.economy.measurement.MODEL_COLUMNS``).
MODEL_COLUMN_NOTES: dict[str, tuple[str, str]] = {
    "quarter": ("index", "Quarter of the run; 0 is the opening state before any step."),
    "npl_ratio": (
        "share",
        "Banks' NPLs on the books (held, plus securitised pools not derecognised) / gross loans "
        "(plus those pools).",
    ),
    "car": ("share", "Banks' total equity / total risk-weighted assets."),
    "provision_coverage": ("share", "Banks' loan-loss provisions / NPLs on the books."),
    "liquidity_ratio": ("share", "Banks' cash and government bonds / short-term liabilities."),
    "lcr": (
        "share",
        "Banks' liquid assets / 30-day outflows (deposit run-off plus interbank funding).",
    ),
    "loan_to_deposit": ("share", "Banks' gross loans / deposits."),
    "npl_stock": ("CNY bn", "Banks' NPLs on the books at the end of the quarter."),
    "gross_loans": ("CNY bn", "Banks' gross loans (plus pools not derecognised)."),
    "new_npl": ("CNY bn", "Principal of the banks' loans that defaulted this quarter."),
    "npl_sold_amc": (
        "CNY bn",
        "Face of NPL packages banks sold to AMCs in this quarter's auctions.",
    ),
    "npl_carved_out": ("CNY bn", "Face moved to AMCs at book value by a policy carve-out."),
    "npl_securitised": ("CNY bn", "Face banks transferred to new SPVs (true sale at the cut-off)."),
    "npl_age_q": (
        "quarters",
        "Face-weighted mean time since default of the NPLs banks hold at the end of the quarter.",
    ),
    "npl_exit_age_q": (
        "quarters",
        "Face-weighted mean time since default at which NPLs left the banks this quarter "
        "(resolved, written off, sold, securitised or carved out): the time to disposal.",
    ),
    "abs_issued": ("CNY bn", "Notional of the tranches issued at this quarter's deal closings."),
    "abs_outstanding": (
        "CNY bn",
        "Outstanding principal (subordinated: notional) of every live deal's tranches.",
    ),
    "senior_spread_bp": (
        "bp",
        "Balance-weighted senior coupon of live deals over the government bond yield.",
    ),
    "bid_ask_bp": (
        "bp",
        "Outstanding-weighted quoted spread (ask − bid) / mid left after the secondary auctions.",
    ),
    "turnover": ("share", "Secondary volume / notional outstanding of the auctioned tranches."),
    "effective_spread_bp": (
        "bp",
        "Outstanding-weighted 2·|price − fundamental| / fundamental of the secondary auctions.",
    ),
    "secondary_volume": ("CNY bn", "Notional traded in the secondary market this quarter."),
    "amihud": ("1 / CNY bn", "Amihud illiquidity: |price change| / volume, outstanding-weighted."),
    "forced_sale_fill_rate": ("share", "Share of liquidity-shocked sell orders that were filled."),
    "discount_to_fundamental": (
        "share",
        "1 − clearing price / fundamental value, outstanding-weighted (negative = premium).",
    ),
    "quarters_to_sell": (
        "quarters",
        "Quarters to sell 10% of an average tranche at the average volume per tranche.",
    ),
    "liquidity_premium_bp": (
        "bp",
        "Investors' mean stated liquidity premium times the share the observed market leaves.",
    ),
    "liquidity_created_amc": ("CNY bn", "Cash banks received from AMC portfolio sales."),
    "liquidity_created_securitisation": (
        "CNY bn",
        "Cash banks received from deal closings and from their retained tranches.",
    ),
    "liquidity_created_workout": ("CNY bn", "Banks' own workout recoveries less workout costs."),
    "bank_recovery_rate": (
        "share",
        "Banks' recoveries plus AMC sale proceeds / book value of NPLs resolved, written off or "
        "sold this quarter.",
    ),
    "amc_recovery_to_date": (
        "share",
        "Cumulative cash recovered on carved-out loans / face carved out (NaN without a "
        "carve-out).",
    ),
    "amc_price_to_face": ("share", "Price / face of the packages sold to AMCs this quarter."),
    "amc_bid_dispersion": ("share", "Mean coefficient of variation of the AMCs' bids per package."),
    "investor_losses": (
        "CNY bn",
        "Tranche principal written off at final maturity plus recharacterisation haircuts.",
    ),
    "enhancer_payouts": ("CNY bn", "Guarantee claims paid into SPVs this quarter."),
    "recharacterisations": ("count", "Pools frozen by a recharacterisation this quarter."),
    "systematic_factor": ("z-score", "The systematic factor Z_t of the Vasicek model."),
    "coal_price": ("CNY/t", "Thermal-coal spot price (NaN without power plants)."),
    "power_tariff": ("CNY/kWh", "Plants' mean on-grid tariff after the coal-linkage rule."),
    "power_debt_ratio": ("share", "Plants' bank debt / plants' total assets (fleet)."),
    "power_debt_ratio_median": ("share", "The median plant's bank debt / total assets."),
    "power_adjusted_leverage": (
        "share",
        "Plants' bank debt plus receivables sold forward to ABS / total assets (fleet).",
    ),
    "power_adjusted_leverage_median": ("share", "The median plant's adjusted leverage."),
    "power_bank_debt": ("CNY bn", "Principal of plants' performing and defaulted bank loans."),
    "power_abs_outstanding": ("CNY bn", "Principal still owed by live receivables vehicles."),
    "power_npl_new": ("CNY bn", "Plant loans that became NPLs this quarter (plant defaults)."),
    "power_npl_created": ("CNY bn", "Cumulative plant loans turned NPL since the start."),
    "power_bank_npl": ("CNY bn", "Principal of plant NPLs held by banks."),
    "power_abs_investor_losses": (
        "CNY bn",
        "Power ABS interest shortfalls and principal written off this quarter.",
    ),
    "power_capex_funded": ("CNY bn", "Project cost financed in this quarter's financing round."),
    "power_capex_unfunded": ("CNY bn", "Project cost no route would finance this round."),
    "power_funded_share": ("share", "Cumulative share of project cost that was financed."),
    "power_rolled_over": ("CNY bn", "Bank lending to plants to roll them over this quarter."),
    "power_share_loan": ("share", "Cumulative share of funded capex financed by bank loans."),
    "power_share_standalone": ("share", "Cumulative share of funded capex by stand-alone ABS."),
    "power_share_pooled": ("share", "Cumulative share of funded capex by the centre's pools."),
    "power_cost_bp": (
        "bp a year",
        "All-in cost of the financing plants took, weighted by amount, cumulative (NaN before "
        "the first project is funded).",
    ),
    **{
        f"power_cost_{c}_bp": ("bp a year", f"The {c} part of `power_cost_bp`.")
        for c in ("interest", "information", "supervision", "issuance")
    },
    **{
        f"power_quote_{r}_bp": (
            "bp a year",
            f"Mean all-in cost quoted for {label} to plants with a project, cumulative (NaN "
            "while the route was never open).",
        )
        for r, label in (
            ("loan", "a bank loan"),
            ("standalone", "a stand-alone ABS"),
            ("pooled", "a place in the centre's pool"),
        )
    },  # fmt: skip
    **{
        f"power_quote_{r}_{c}_bp": ("bp a year", f"The {c} part of `power_quote_{r}_bp`.")
        for r in ("loan", "standalone", "pooled")
        for c in ("interest", "information", "supervision", "issuance")
    },
    "power_standalone_coupon": (
        "annual",
        "Mean coupon the investors' book cleared at for stand-alone ABS quotes, cumulative.",
    ),
    "power_plants_in_default": ("count", "Plants whose bank loans are in default."),
    "power_loss_making_share": ("share", "Share of plants with a net loss this quarter."),
}

# What the statements of ``NPLMarketModel.step`` do where the code has no docstring to say it,
# keyed by the method called or the attribute assigned.
STEP_NOTES: dict[str, str] = {
    "running": "The run stops at the scenario's horizon.",
}

# What each output table of a run holds (the order of ``nplsim.experiments.run.write_results``).
OUTPUT_NOTES: dict[str, str] = {
    "model.parquet": "one row per quarter, 0 to the horizon",
    "banks.parquet": "one row per bank and quarter (`StateBank.record`)",
    "amcs.parquet": "one row per AMC and quarter (`AssetManagementCompany.record`)",
    "deals.parquet": "one row per issued NPL deal (`nplsim.economy.outputs.DEAL_COLUMNS`)",
    "trades.parquet": "every AMC auction sale, primary allotment and secondary trade "
    "(`nplsim.market.blotter.COLUMNS`)",
    "events.parquet": "reforms, shocks, carve-outs, true sales, issues, recharacterisations, "
    "defaults (`NPLMarketModel.event_frame`)",
    "power.parquet": "one row per plant and year, power scenarios only (`PowerPlant.record`)",
}

# Meanings of scenario parameters whose pydantic field carries no description (the code's own
# description wins where there is one; these are shown in italics).
PARAMETER_NOTES: dict[str, str] = {
    "name": "Scenario name (a built-in scenario's file name).",
    "description": "One line saying what the scenario is.",
    "regime_overrides": "Regime fields changed from the preset.",
    "banks": "The state banks (`BankSpec`).",
    "amcs": "The asset management companies (`AMCSpec`).",
    "segments": "Calibration of the six borrower segments (`SegmentSpec`).",
    "commercial_mix": "Segment shares of lending that is not government-directed.",
    "investors": "Investor groups (`InvestorSpec`).",
    "enhancers": "Private credit enhancers (`EnhancerSpec`).",
    "events": "Scheduled reforms: quarter, preset to switch to, field overrides.",
    "initial_npl_ratio": "Expected NPL share of the opening book.",
    "initial_npl_max_age_q": "Opening NPLs are 0 to this many quarters old.",
    "loan_growth_annual": "Growth of the size of re-lent loan slots, a year.",
    "deposit_growth_annual": "Growth of deposits, a year.",
    "tax_rate": "Income tax on banks' positive profit.",
    "bank_workout_cost": "Banks' workout cost per unit recovered (also deals' disposal costs).",
    "write_off_age_q": "Age at which an unresolved NPL is written off, quarters.",
    "amc_funding_rate": "Annual rate on AMCs' funding debt.",
    "capital_pressure_weight": "Weight of the shadow price of capital.",
    "npl_pressure_weight": "Weight of the shadow price of NPL stock.",
    "car_buffer": "Band above the CAR minimum over which capital pressure builds.",
    "bid_noise_at_zero_disclosure": "AMC valuation log-s.d. added at zero disclosure.",
    "bid_noise_floor": "AMC valuation log-s.d. at full disclosure.",
    "price_learning_rate": "Learning rate of originators' price beliefs.",
    "securitisation.with_mezz": "Whether deals have a mezzanine tranche.",
    "securitisation.senior_default_prob": "Rating stress: chance collections miss the senior.",
    "securitisation.mezz_default_prob": "Rating stress: chance collections miss senior + mezz.",
    "securitisation.servicer": "Who services pools: the originator or its paired AMC.",
    "securitisation.trustee_bp_per_year": "Trustee and custody fee, bp a year "
    "(facts: issuance-costs, 1-5 bp, unverified).",
    "securitisation.underwriting_bp": "Underwriting fee, bp of issuance "
    "(facts: issuance-costs, 10-50 bp, unverified).",
    "securitisation.fixed_cost_cny_bn": "Rating, legal, audit per deal "
    "(facts: issuance-costs, CNY 0.5-1.5 m, unverified).",
    "securitisation.firm_commitment": "Underwriter buys what investors do not (else best efforts).",
    "securitisation.trigger_ratio": "Accelerate below this share of expected collections.",
    "securitisation.sigma_floor": "Log-s.d. of pool collections at full disclosure.",
    "securitisation.sigma_opacity": "Extra log-s.d. of pool collections at zero disclosure.",
    "securitisation.individual_notice_min_delay_q": "Least closing lag with individual notice.",
    "securitisation.bulk_approval_delay_q": "Extra closing lag to approve a bulk transfer.",
    "securitisation.recharacterisation_haircut": "Share of frozen collections lost at release.",
    "securitisation.initial_price_belief": "Originators' opening deal value / market view.",
    "securitisation.underwriter_capital_cny_bn": "Underwriter's capital, CNY bn.",
    "secondary.valuation_sigma_floor": "Dispersion of traders' valuations at full disclosure.",
    "secondary.dealer_base_half_spread": "Dealer's order-processing half-spread.",
    "secondary.dealer_information_half_spread": "Dealer's adverse-selection half-spread at d = 0.",
    "secondary.dealer_inventory_half_spread": "Quote shading per unit of inventory / outstanding.",
    "macro.z_initial": "Opening value of the systematic factor.",
    "macro.deposit_rate": "Annual deposit rate.",
    "macro.gov_bond_yield": "Risk-free rate: government bonds and ABS pricing.",
    "macro.interbank_rate": "Annual interbank and central-bank funding rate.",
    "macro.shocks": "Scheduled shocks to the systematic factor.",
    "power.build_cost_cny_per_kw": "Cost of new capacity, CNY per kW.",
    "power.depreciation_years": "Straight-line depreciation life, years.",
    "power.min_dispatch": "Lowest dispatch share however dear coal is.",
    "power.centre_min_plants": "Fewest plants in a centre pool.",
    "power.abs_loss_severity": "Loss given default of a power ABS.",
    "power.coal.shocks": "Scheduled jumps in the log coal price.",
}
