"""Figures derived from facts: 5-hour blocks, quota readings, pace and forecasts, plan value and
data-quality findings. Recomputable at any time; no HTML, no HTTP."""
