package dev.coffeert.job;

import org.apache.flink.api.common.ExecutionConfig;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichFunction;
import org.apache.flink.api.common.functions.RuntimeContext;
import org.apache.flink.api.common.functions.util.FunctionUtils;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.InputTypeConfigurable;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.functions.sink.legacy.RichSinkFunction;
import org.apache.flink.streaming.api.functions.sink.legacy.SinkFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A sink function around another, whose {@code close()} on a failing or cancelled task logs the
 * wrapped function's error instead of throwing it.
 *
 * <p>Flink closes a failed task's operators in the task's clean-up, and an exception there is fatal
 * to the TaskManager JVM ({@code Task#doRun}: "FATAL - exception in exception handler of task").
 * The JDBC connector's {@code JdbcOutputFormat.close()} throws its background flush's error again
 * there, so a Postgres outage ended the TaskManager process. That error has failed the task
 * already; the job restarts from its last checkpoint, which {@code snapshotState} (a flush) made
 * durable, and replays what came after it into upserts. Dropping the error in {@code close()}
 * therefore loses nothing.
 *
 * <p>{@code close()} after {@code finish()} (a bounded input's end, a drained stop) still throws:
 * that last flush holds records no checkpoint will replay.
 */
public final class FailedTaskSafeSink<T> extends RichSinkFunction<T>
        implements CheckpointedFunction, InputTypeConfigurable {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(FailedTaskSafeSink.class);

    private final SinkFunction<T> sink;
    private transient boolean finished;

    public FailedTaskSafeSink(SinkFunction<T> sink) {
        this.sink = sink;
    }

    @Override
    public void setRuntimeContext(RuntimeContext context) {
        super.setRuntimeContext(context);
        if (sink instanceof RichFunction) {
            ((RichFunction) sink).setRuntimeContext(context);
        }
    }

    @Override
    public void setInputType(TypeInformation<?> type, ExecutionConfig config) {
        if (sink instanceof InputTypeConfigurable) {
            ((InputTypeConfigurable) sink).setInputType(type, config);
        }
    }

    @Override
    public void open(OpenContext context) throws Exception {
        finished = false;
        FunctionUtils.openFunction(sink, context);
    }

    @Override
    public void invoke(T value, Context context) throws Exception {
        sink.invoke(value, context);
    }

    @Override
    public void writeWatermark(org.apache.flink.api.common.eventtime.Watermark watermark) throws Exception {
        sink.writeWatermark(watermark);
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        if (sink instanceof CheckpointedFunction) {
            ((CheckpointedFunction) sink).initializeState(context);
        }
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) throws Exception {
        if (sink instanceof CheckpointedFunction) {
            ((CheckpointedFunction) sink).snapshotState(context);
        }
    }

    @Override
    public void finish() throws Exception {
        sink.finish();
        finished = true;
    }

    @Override
    public void close() throws Exception {
        if (finished) {
            FunctionUtils.closeFunction(sink);
            return;
        }
        try {
            FunctionUtils.closeFunction(sink);
        } catch (Exception e) {
            LOG.warn("Closing the sink of a failed or cancelled task failed; not rethrown (it would end the "
                    + "TaskManager): the job restarts from its last checkpoint and writes these records again", e);
        }
    }
}
