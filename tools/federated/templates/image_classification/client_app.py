"""ClientApp of the edgeai image-classification template: one round of local training.

Fixed text (not generated): it reads the job (data, partitions) from the run config, loads the
global weights, trains on this SuperNode's partition with the regions' settings (task.py) and
replies with the new weights and the number of examples, which FedAvg weights by.
"""

import task
from edgeai.tools.federated import appkit
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    job = appkit.job_of(context)
    model = task.build(job)
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    partition_id = int(context.node_config["partition-id"])
    config = msg.content["config"]
    loss, seen = task.train(model, job, partition_id, int(config["server-round"]),
                            float(config["lr"]))
    metrics = MetricRecord({"train_loss": loss, "num-examples": seen})
    content = RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics})
    return Message(content=content, reply_to=msg)
