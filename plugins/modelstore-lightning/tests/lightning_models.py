"""A LightningModule and its training, shared by the tests."""

#: A LightningModule with saved hyperparameters, trained for a few real steps by a Trainer. The
#: same source builds an equal module in another interpreter (assert_deterministic_across_processes).
REGRESSOR = """
import torch
import pytorch_lightning as pl


class Regressor(pl.LightningModule):
    def __init__(self, width: int = 8, lr: float = 0.1, activation: str = "tanh", layers=(3, 1)):
        super().__init__()
        self.save_hyperparameters()
        act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[activation]
        self.net = torch.nn.Sequential(torch.nn.Linear(layers[0], width), act(), torch.nn.Linear(width, layers[1]))
        self.norm = torch.nn.BatchNorm1d(layers[0])

    def forward(self, x):
        return self.net(self.norm(x))

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def fit(module, steps=4):
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)
    trainer = pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", devices=1)
    trainer.fit(module, data)
    return module.eval()


torch.manual_seed(0)
regressor = fit(Regressor(width=6, lr=0.05, activation="relu"))
"""
