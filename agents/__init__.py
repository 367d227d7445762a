"""Mesa agents of nplsim: one module per institution, behaviour only."""
