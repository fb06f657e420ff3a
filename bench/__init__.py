"""bench: a comparative benchmark harness for prompt-transfer methods on T5 and on BERT-family encoders."""
__version__ = "0.1.0"
