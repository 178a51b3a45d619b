"""Every HTML page that reads usage and budgets: views/ (one module per page), forms, cards and
charts. No models: the figures come from usage and budgets."""
