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
    "car": ("share", "Banks' total capital (CET1, AT1 and tier 2) / risk-weighted assets."),
    "cet1_ratio": ("share", "Banks' common equity tier 1 / risk-weighted assets."),
    "tier1_ratio": ("share", "Banks' (CET1 + additional tier 1) / risk-weighted assets."),
    "provision_coverage": ("share", "Banks' loan-loss provisions / NPLs on the books."),
    "liquidity_ratio": (
        "share",
        "Banks' current assets / current liabilities, both due within a month.",
    ),
    "lcr": ("share", "Banks' HQLA after haircuts / 30-day net cash outflows."),
    "loan_to_deposit": ("share", "Banks' gross loans / deposits."),
    "hqla": ("CNY bn", "Banks' high-quality liquid assets after haircuts."),
    "interbank_borrowing": ("CNY bn", "Banks' interbank funding outstanding."),
    "central_bank_borrowing": (
        "CNY bn",
        "Banks' standing and medium-term facility borrowing outstanding.",
    ),
    "interbank_rate": ("annual rate", "The quarter's interbank rate (with any stress)."),
    "funding_cost": (
        "annual rate",
        "Banks' interest on interest-bearing liabilities / those liabilities.",
    ),
    "npl_stock": ("CNY bn", "Banks' NPLs on the books at the end of the quarter."),
    "gross_loans": ("CNY bn", "Banks' gross loans (plus pools not derecognised)."),
    "new_npl": ("CNY bn", "Principal of the banks' loans that defaulted this quarter."),
    "written_off": ("CNY bn", "NPL principal banks charged off at the write-off age."),
    "npl_sold_amc": (
        "CNY bn",
        "Face of NPL packages banks sold to AMCs in this quarter's auctions.",
    ),
    "npl_carved_out": ("CNY bn", "Face moved to AMCs at book value by a policy carve-out."),
    "npl_securitised": ("CNY bn", "Face banks transferred to new SPVs (true sale at the cut-off)."),
    "capital_injected": ("CNY bn", "Common equity the State injected into banks."),
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
        "Senior coupon over the government bond yield, weighted by live deals' senior balance"
        " (issue size for deals issued this quarter); NaN without deals.",
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
        "Banks' recoveries (those on loans written off in earlier quarters included) plus AMC "
        "sale proceeds / book value of NPLs resolved, written off or sold this quarter; can "
        "exceed 1.",
    ),
    "amc_recovery_to_date": (
        "share",
        "AMCs' cumulative cash recovered / cumulative face disposed of everything they bought or"
        " took in carve-outs (NaN before they have disposed of anything).",
    ),
    "amc_price_to_face": ("share", "Price / face of the packages sold to AMCs this quarter."),
    "amc_bid_dispersion": ("share", "Mean coefficient of variation of the AMCs' bids per package."),
    "investor_losses": (
        "CNY bn",
        "Tranche principal written off at final maturity plus recharacterisation haircuts.",
    ),
    "enhancer_payouts": ("CNY bn", "Guarantee claims paid into SPVs this quarter."),
    "recharacterisations": ("count", "Pools frozen by a recharacterisation this quarter."),
    "remainder_sales": (
        "CNY bn",
        "What trusts at their deal's legal final maturity got this quarter for the loans they had"
        " not collected, sold in the NPL auction.",
    ),
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
    "prudential_overrides": "Prudential fields changed from the preset.",
    "banks": "The state banks (`BankSpec`).",
    "amcs": "The asset management companies (`AMCSpec`).",
    "segments": "Calibration of the six borrower segments (`SegmentSpec`).",
    "commercial_mix": "Segment shares of lending that is not government-directed.",
    "investors": "Investor groups (`InvestorSpec`).",
    "enhancers": "Private credit enhancers (`EnhancerSpec`).",
    "events": "Scheduled reforms: quarter, legal and/or prudential preset to switch to, field"
    " overrides.",
    "initial_npl_ratio": "Expected NPL share of the opening book.",
    "initial_npl_max_age_q": "Opening NPLs are 0 to this many quarters old.",
    "loan_growth_annual": "Growth of the size of re-lent loan slots, a year.",
    "deposit_growth_annual": "Growth of deposits, a year.",
    "tax_rate": "Income tax on banks' positive profit.",
    "bank_workout_cost": "Banks' workout cost per unit recovered (also deals' disposal costs).",
    "write_off_age_q": "Age at which an unresolved NPL is written off, quarters.",
    "claim_life_q": "Age up to which AMCs, buyers and trusts pursue a claim they bought, quarters.",
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

# Unit and meaning of every column of the other output tables (banks, AMCs, deals, trades,
# events), by file; ``nplsim.experiments.odd`` fails when a column has no entry.
OUTPUT_COLUMN_NOTES: dict[str, dict[str, tuple[str, str]]] = {
    "banks.parquet": {
        "quarter": ("index", "Quarter of the run."),
        "bank": ("name", "The bank."),
        "cash": ("CNY bn", "Reserves at the central bank (required and excess)."),
        "required_reserves": ("CNY bn", "Reserves the required reserve ratio asks for."),
        "gov_bonds": ("CNY bn", "Government bonds at book value (HQLA, no haircut)."),
        "policy_bonds": ("CNY bn", "Policy-bank bonds at book value (HQLA with a haircut)."),
        "placements": ("CNY bn", "Interbank placements, due within 30 days."),
        "investments": ("CNY bn", "Other securities, not HQLA (local-government, corporate)."),
        "amc_bonds": ("CNY bn", "AMC bonds received in a carve-out."),
        "retained_abs": ("CNY bn", "Book value of tranches retained from its own deals."),
        "pending_securitisation": ("CNY bn", "Pools transferred to SPVs awaiting closing."),
        "sec_price_belief": ("ratio", "Belief: deal proceeds / market view of a pool."),
        "performing_loans": ("CNY bn", "Performing principal held."),
        "gross_npl": ("CNY bn", "Non-performing principal held."),
        "npl_on_books": ("CNY bn", "NPLs held plus securitised pools not derecognised."),
        "provisions": ("CNY bn", "Loan-loss provisions."),
        "total_assets": ("CNY bn", "Assets net of provisions."),
        "deposits_stable": ("CNY bn", "Stable (insured retail) deposits."),
        "deposits_other": ("CNY bn", "Less stable deposits (other retail and corporate)."),
        "interbank_borrowing": ("CNY bn", "Interbank funding, rolled over each quarter."),
        "slf": ("CNY bn", "Standing lending facility borrowing (overnight, at a penalty)."),
        "mlf": ("CNY bn", "Medium-term lending facility borrowing (one year)."),
        "sub_debt": ("CNY bn", "Tier 2 subordinated debt."),
        "at1": ("CNY bn", "Additional tier 1 instruments (preference shares)."),
        "equity": ("CNY bn", "Book equity: common equity tier 1."),
        "npl_ratio": ("share", "NPLs on the books / (gross loans + pools not derecognised)."),
        "provision_coverage": ("share", "Provisions / NPLs on the books."),
        "rwa": ("CNY bn", "Credit risk-weighted assets."),
        "cet1_ratio": ("share", "CET1 / RWA."),
        "tier1_ratio": ("share", "(CET1 + additional tier 1) / RWA."),
        "car": ("share", "Total capital (tier 1 + tier 2) / RWA."),
        "car_requirement": ("share", "Total-capital ratio required, buffers included."),
        "hqla": ("CNY bn", "High-quality liquid assets after haircuts."),
        "lcr": ("share", "HQLA / 30-day net cash outflows."),
        "liquidity_ratio": ("share", "Current assets / current liabilities (one month)."),
        "loan_to_deposit": ("share", "Gross loans / deposits."),
        "funding_cost": ("annual rate", "Interest on interest-bearing liabilities / their sum."),
        "marginal_funding_cost": ("annual rate", "Rate on the next yuan the bank must raise."),
        "liquidity_created_amc": ("CNY bn", "Cash from AMC portfolio sales this quarter."),
        "liquidity_created_securitisation": (
            "CNY bn",
            "Cash from deal closings and retained tranches this quarter.",
        ),
        "liquidity_created_workout": ("CNY bn", "Own workout recoveries less workout costs."),
        "shadow_price_capital": ("per CNY", "Value of a unit of capital surplus to the bank."),
        "shadow_price_npl": ("per CNY", "Value of removing a unit of NPL face (0 below target)."),
        "amc_price_belief": ("ratio", "Belief: AMC price / market view of a package."),
        "payouts_stopped": ("flag", "The supervisor has stopped distributions."),
        "lending_restrained": ("flag", "The supervisor restrains the growth of its RWA."),
        "npl_plan_milestone": ("share", "NPL ratio a mandated disposal plan asks for now."),
        "interest_income": ("CNY bn", "Interest on loans this quarter."),
        "recoveries": ("CNY bn", "Cash recovered on its own NPLs this quarter."),
        "workout_costs": ("CNY bn", "Cost of its own workouts this quarter."),
        "written_off": ("CNY bn", "NPL principal charged off at the write-off age."),
        "npl_resolved": ("CNY bn", "Carrying value of NPLs resolved by workout."),
        "new_npl": ("CNY bn", "Principal of its loans that defaulted this quarter."),
        "new_lending": ("CNY bn", "Principal lent into freed slots this quarter."),
        "principal_repaid": ("CNY bn", "Principal performing borrowers repaid this quarter."),
        "npl_sold_amc": ("CNY bn", "Face of NPLs sold to AMCs this quarter."),
        "amc_sale_proceeds": ("CNY bn", "Cash from those sales."),
        "npl_carved_out": ("CNY bn", "Face moved to AMCs in a carve-out this quarter."),
        "npl_securitised": ("CNY bn", "Face transferred to new SPVs this quarter."),
        "securitisation_proceeds": ("CNY bn", "Cash received at deal closings."),
        "transfer_costs": ("CNY bn", "Debtor-notice costs and stamp duty on true sales."),
        "abs_income": ("CNY bn", "Income on retained tranches."),
        "amc_coupon": ("CNY bn", "Coupons received on AMC bonds."),
        "provision_expense": ("CNY bn", "Charge to profit for provisions (negative: release)."),
        "interest_expense": (
            "CNY bn",
            "Interest paid on deposits, interbank, central-bank funding and subordinated debt.",
        ),  # fmt: skip
        "fire_sale_losses": ("CNY bn", "Losses on bonds sold at a fire-sale discount."),
        "capital_injected": ("CNY bn", "Common equity injected by the State."),
        "instruments_issued": ("CNY bn", "AT1 and tier 2 debt issued this quarter."),
        "dividends": ("CNY bn", "Preference and ordinary dividends paid."),
        "net_income": ("CNY bn", "Profit after tax of the quarter."),
    },
    "amcs.parquet": {
        "quarter": ("index", "Quarter of the run."),
        "amc": ("name", "The asset management company."),
        "cash": ("CNY bn", "Cash."),
        "npl_book": ("CNY bn", "NPLs held at the price paid."),
        "npl_face": ("CNY bn", "NPLs held at face."),
        "funding_debt": ("CNY bn", "Bond and central-bank funding drawn."),
        "amc_bonds": ("CNY bn", "AMC bonds owed to banks for a carve-out."),
        "equity": ("CNY bn", "Equity."),
        "retained_abs": ("CNY bn", "Book value of tranches retained from its own deals."),
        "pending_securitisation": ("CNY bn", "Pools transferred to SPVs awaiting closing."),
        "face_bought": ("CNY bn", "Face of packages bought at auction this quarter."),
        "paid": ("CNY bn", "Cash paid for those packages."),
        "face_carved_out": ("CNY bn", "Face taken in a carve-out this quarter."),
        "recoveries": ("CNY bn", "Cash recovered this quarter."),
        "workout_costs": ("CNY bn", "Workout costs this quarter."),
        "npl_securitised": ("CNY bn", "Face transferred to new SPVs this quarter."),
        "securitisation_proceeds": ("CNY bn", "Cash received at deal closings."),
        "transfer_costs": ("CNY bn", "Debtor-notice costs and stamp duty on true sales."),
        "abs_income": ("CNY bn", "Income on retained tranches."),
    },
    "deals.parquet": {
        "deal_id": ("id", "The deal (and its SPV)."),
        "originator": ("name", "The bank or AMC that sold the pool."),
        "quarter_cutoff": ("index", "Quarter of the true sale."),
        "quarter_issued": ("index", "Quarter of closing and issue."),
        "closing_lag_q": ("quarters", "Issue quarter less cut-off quarter."),
        "pool_loans": ("count", "Loan slots in the pool."),
        "pool_borrowers": (
            "count",
            "Real borrowers behind the pool's slots (each segment's"
            " average balance); debtor notice is counted per borrower.",
        ),
        "pool_public_value": (
            "CNY bn",
            "Expected collections investors infer from the disclosed pool data alone.",
        ),
        "lemons_factor": (
            "ratio",
            "Investors' discount for the originator's selection of the"
            " pool (1 = no adverse selection inferred).",
        ),
        "originator_bias": (
            "ratio",
            "Investors' learned ratio of this originator's realised to"
            " expected collections on its earlier deals.",
        ),
        "distress_prob": (
            "probability",
            "Investors' estimate that the originator becomes distressed over the deal's life.",
        ),
        "court_reach": (
            "probability",
            "Chance a court reaches the pool in the originator's"
            " distress, given bankruptcy remoteness and SPV form.",
        ),
        "recharacterisation_loss": (
            "share of pool",
            "Loss to investors if the court reaches the"
            " pool (freeze time and haircut, softened by protection).",
        ),
        "senior_expected_loss_bp": ("bp a year", "Senior spread component: expected credit loss."),
        "senior_unexpected_loss_bp": (
            "bp a year",
            "Senior spread component: premium for unexpected loss.",
        ),
        "senior_liquidity_premium_bp": (
            "bp a year",
            "Senior spread component: premium for the secondary market's illiquidity.",
        ),
        "sub_required_return": (
            "annual, decimal",
            "Return the subordinated tranche's buyers require.",
        ),
        "notice_cost": ("CNY bn", "Cost of notifying the pool's debtors of the transfer."),
        "guarantee_fee_bp": ("bp a year", "Fee of the senior tranche's guarantee (0 without)."),
        "expected_collections": (
            "CNY bn",
            "Collections investors expected when they priced the deal.",
        ),
        "realised_collections": (
            "CNY bn",
            "Collections the deal realised (filled at maturity, else NaN).",
        ),
        "realised_to_expected": ("ratio", "Realised over expected collections (at maturity)."),
        "pool_principal": ("CNY bn", "Principal of the pool."),
        "pool_face": ("CNY bn", "Principal plus accrued interest of the pool."),
        "pool_expected_recovery": ("CNY bn", "Investors' expected collections at issue."),
        "collection_sigma": ("log-s.d.", "Investors' dispersion of total collections."),
        "issued_total": ("CNY bn", "Notional issued, all tranches."),
        "senior_size": ("CNY bn", "Senior notional."),
        "mezz_size": ("CNY bn", "Mezzanine notional."),
        "sub_size": ("CNY bn", "Subordinated notional."),
        "senior_rating": ("rating", "Rating of the senior tranche."),
        "mezz_rating": ("rating", "Rating of the mezzanine tranche."),
        "senior_coupon": ("annual rate", "Senior coupon."),
        "mezz_coupon": ("annual rate", "Mezzanine coupon."),
        "senior_spread_bp": ("bp", "Senior coupon over the government bond yield."),
        "senior_legal_premium_bp": ("bp", "Legal-risk part of the marginal senior yield."),
        "senior_information_premium_bp": ("bp", "Information part of the marginal senior yield."),
        "senior_bid_to_cover": ("ratio", "Senior demand within the coupon cap / size."),
        "sub_price": ("ratio", "Price / notional of the subordinated tranche."),
        "fees_total": ("CNY bn", "Underwriting, fixed and trustee fees."),
        "transfer_costs": ("CNY bn", "Debtor-notice costs and stamp duty of the true sale."),
        "retained": ("CNY bn", "Notional the originator kept."),
        "retention_required": ("CNY bn", "Notional the risk-retention rule asks it to keep."),
        "reserve": ("CNY bn", "Cash reserve funded at closing."),
        "proceeds_to_originator": ("CNY bn", "Cash paid to the originator at closing."),
        "net_proceeds_per_face": ("ratio", "Cash plus retained value / pool principal."),
        "guarantor": ("name", "Guarantor of the senior (empty if none)."),
        "servicer": ("name", "Servicer of the pool."),
    },
    "trades.parquet": {
        "quarter": ("index", "Quarter of the trade."),
        "market": (
            "category",
            "amc_auction (banks' NPL packages), remainder_sale (a trust's loans left at its"
            " legal final maturity), primary or secondary.",
        ),
        "seller": ("name", "Seller."),
        "buyer": ("name", "Buyer."),
        "segment": (
            "category",
            "Borrower segment (AMC auctions; a remainder sale's, or mixed), tranche (primary) or"
            " SPV and tranche (secondary).",
        ),
        "n_loans": ("count", "Loan slots in an NPL package (0 for securities)."),
        "face": ("CNY bn", "Face or notional traded."),
        "price": ("CNY bn", "Cash paid."),
        "price_to_face": ("ratio", "Price / face."),
        "reserve": ("CNY bn", "Seller's reserve price (AMC auctions)."),
        "n_bids": ("count", "Eligible bidders."),
        "bid_cv": ("share", "Coefficient of variation of the bids."),
    },
    "events.parquet": {
        "quarter": ("index", "Quarter of the event."),
        "kind": ("category", "What happened (reform, shock, measure, recapitalisation, ...)."),
        "agent": ("name", "Who it happened to or who acted."),
        "detail": ("text", "Details in words."),
        "amount": ("CNY bn or as named", "The amount involved (0 where none)."),
    },
}
