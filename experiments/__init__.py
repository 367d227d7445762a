"""Experiments: running scenarios, writing results, figures and the nplsim command line."""
