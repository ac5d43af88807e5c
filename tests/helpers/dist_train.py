"""Run under torchrun (or alone): train a few batches and save this rank's parameters to OUT/rank<R>.pt."""

import sys
from pathlib import Path

import torch

from engine.config import TrainConfig
from engine.distributed import shutdown
from engine.train import Trainer

out = Path(sys.argv[1])
trainer = Trainer(TrainConfig(dataset="patterns", preset="quick", time_steps=30, batch_size=16, epochs=2, max_batches=3,
                              lr=3e-3, lr_th=3e-2, device="cpu"), out=out / "run")
events = list(trainer.events())
assert events[-1].kind == "end", events[-1]
rank = trainer.world.rank
torch.save(dict(params={k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
                history=[r.to_json() for r in trainer.history], world=trainer.world.size), out / f"rank{rank}.pt")
shutdown()
