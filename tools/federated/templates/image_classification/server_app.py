"""ServerApp of the edgeai image-classification template: FedAvg with a per-round learning rate.

Fixed text (not generated): it builds the initial model (task.build), runs FedAvg for the job's
rounds sending each round's rate (task.learning_rate), evaluates the global model on the
server-held validation and test splits after every round, and writes the learning curve and the
final weights into the job's output folder.
"""

import task
from edgeai.tools.federated import appkit
from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    job = appkit.job_of(context)
    model = task.build(job)
    strategy = appkit.ScheduledFedAvg(task.learning_rate, job)
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(model.state_dict()),
        num_rounds=job.rounds,
        evaluate_fn=appkit.evaluator(job, task.build, strategy),
    )
    appkit.save_final(job, model, result.arrays)
