from methods.pt.config import PTConfig
from methods.pt.model import PromptTuning

__all__ = ["PTConfig", "PromptTuning"]
