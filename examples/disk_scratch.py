# The course's test.py with minispec.scratch: 2-25-25-25-1, Tanh, MSE, SGD on the disk data.
import torch

from minispec import data
from minispec.scratch import SGD, Linear, MSELoss, Sequential, Tanh

torch.set_grad_enabled(False)  # no autograd anywhere: every backward is written by hand
gen = torch.Generator().manual_seed(0)
disk = data.load("disk", {}, seed=0)  # 1000 train and 1000 test points in [0, 1]^2
x, labels = disk.train.inputs["x"][None], disk.train.targets["target"][None]  # leading replica axis: R = 1
x_test, labels_test = disk.test.inputs["x"][None], disk.test.targets["target"][None]
t = labels.float()[..., None]  # MSE target [1, 1000, 1]: 1 inside the disk, 0 outside

model = Sequential(Linear(2, 25, generator=gen), Tanh(), Linear(25, 25, generator=gen), Tanh(),
                   Linear(25, 25, generator=gen), Tanh(), Linear(25, 1, generator=gen))
criterion, optimizer = MSELoss(), SGD(model.params(), lr=0.1, momentum=0.9)
for epoch in range(200):
    for b in range(0, x.shape[1], 100):  # mini-batches of 100
        optimizer.zero_grad()
        loss = criterion.forward(model.forward(x[:, b:b + 100]), t[:, b:b + 100])  # [R]
        model.backward(criterion.backward())  # accumulates every Parameter.grad
        optimizer.step()

def error(inputs, labels):  # % of points on the wrong side of 0.5
    return 100.0 * ((model.forward(inputs)[..., 0] > 0.5).long() != labels).float().mean().item()

print(f"train error {error(x, labels):.2f}%")
print(f"test error {error(x_test, labels_test):.2f}%")
