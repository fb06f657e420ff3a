"""Head only: the frozen encoder reads the input as it is; only the run's heads train."""
from __future__ import annotations

from methods.base import Method, ParamCounts


class HeadOnly(Method):
    name = "head-only"

    def prompts(self, inputs_embeds, attention_mask, task_ids):
        return None

    def param_groups(self):
        return []

    def param_counts(self):
        return ParamCounts(0, 0, 0, 0, self.context.backbone_params)

    @classmethod
    def search_space(cls, trial):
        return {}
