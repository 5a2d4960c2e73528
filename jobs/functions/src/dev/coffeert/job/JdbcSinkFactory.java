package dev.coffeert.job;

import java.util.Set;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.connector.jdbc.core.table.JdbcDynamicTableFactory;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.connector.sink.legacy.SinkFunctionProvider;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DynamicTableSinkFactory;

/**
 * The job's Postgres sinks ({@code 'connector' = 'coffee-jdbc'}): the JDBC connector's sink, with
 * the same options and behaviour, whose sink function is wrapped in {@link FailedTaskSafeSink} so
 * that a Postgres outage fails the task (and the job restarts from its checkpoint) without ending
 * the TaskManager process. Registered in {@code META-INF/services} next to this class's sources.
 */
public final class JdbcSinkFactory implements DynamicTableSinkFactory {
    public static final String IDENTIFIER = "coffee-jdbc";

    private final JdbcDynamicTableFactory jdbc = new JdbcDynamicTableFactory();

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return jdbc.requiredOptions();
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return jdbc.optionalOptions();
    }

    @Override
    public Set<ConfigOption<?>> forwardOptions() {
        return jdbc.forwardOptions();
    }

    @Override
    public DynamicTableSink createDynamicTableSink(Context context) {
        return new Sink(jdbc.createDynamicTableSink(context));
    }

    /** The JDBC table sink, its sink function wrapped. */
    static final class Sink implements DynamicTableSink {
        private final DynamicTableSink jdbc;

        Sink(DynamicTableSink jdbc) {
            this.jdbc = jdbc;
        }

        @Override
        public ChangelogMode getChangelogMode(ChangelogMode requestedMode) {
            return jdbc.getChangelogMode(requestedMode);
        }

        @Override
        public SinkRuntimeProvider getSinkRuntimeProvider(Context context) {
            SinkRuntimeProvider provider = jdbc.getSinkRuntimeProvider(context);
            if (!(provider instanceof SinkFunctionProvider)) {
                throw new IllegalStateException(
                        "coffee-jdbc wraps the JDBC connector's sink function, but it provided a "
                                + provider.getClass().getName());
            }
            SinkFunctionProvider functions = (SinkFunctionProvider) provider;
            return SinkFunctionProvider.of(
                    new FailedTaskSafeSink<RowData>(functions.createSinkFunction()),
                    functions.getParallelism().orElse(null));
        }

        @Override
        public DynamicTableSink copy() {
            return new Sink(jdbc.copy());
        }

        @Override
        public String asSummaryString() {
            return jdbc.asSummaryString();
        }
    }
}
