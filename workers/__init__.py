"""Translation workers: RQ jobs, the Argos Translate engine, model management,
language detection. Import-light: argostranslate is imported only by engine.py,
after argos_env.configure() has set its environment."""
