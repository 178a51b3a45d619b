"""How reports get in: archive, parse (parsers/), store facts (facts.py) and queue derived work
(derive.py). pipeline.py is the entry point the API and the reprocess command call."""
