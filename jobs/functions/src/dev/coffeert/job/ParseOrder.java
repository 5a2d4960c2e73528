package dev.coffeert.job;

import org.apache.flink.metrics.Counter;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.TableFunction;
import org.apache.flink.types.Row;

/**
 * SQL table function {@code parse_order(value BYTES)}: one row per Kafka record, the job's order
 * row or the reason the record is a dead letter ({@code reason} set, every other field null).
 * A table function (used with LATERAL TABLE) so the planner calls it once per record, where a
 * scalar function returning a ROW may be called once per field read from it.
 *
 * <p>Counts {@code coffee_orders_parsed} and {@code coffee_dlq_records} in its operator's metric
 * group, the names the dashboard and the CoffeeRtDeadLetters alert read.
 */
@FunctionHint(output = @DataTypeHint(
        "ROW<reason STRING, message_id STRING, store_id STRING, placed_at_ms BIGINT, channel STRING, "
        + "currency STRING, total_cents BIGINT, item_count INT, quantity INT, items_json STRING, "
        + "items ARRAY<ROW<line_no INT, sku STRING, name STRING, category STRING, origin STRING, quantity INT, "
        + "unit_price_cents BIGINT, first_of_sku INT>>>"))
public class ParseOrder extends TableFunction<Row> {
    private static final long serialVersionUID = 1L;

    private transient Counter parsed;
    private transient Counter deadLetters;

    @Override
    public void open(FunctionContext context) {
        parsed = context.getMetricGroup().counter("coffee_orders_parsed");
        deadLetters = context.getMetricGroup().counter("coffee_dlq_records");
    }

    public void eval(byte[] value) {
        OrderParser.Result result = OrderParser.parse(value);
        OrderParser.Order o = result.order();
        if (o == null) {
            if (deadLetters != null) {
                deadLetters.inc();
            }
            collect(Row.of(result.reason(), null, null, null, null, null, null, null, null, null, null));
            return;
        }
        if (parsed != null) {
            parsed.inc();
        }
        Row[] items = new Row[o.lines().size()];
        for (int i = 0; i < items.length; i++) {
            OrderParser.Line l = o.lines().get(i);
            items[i] = Row.of(l.lineNo(), l.sku(), l.name(), l.category(), l.origin(), (int) l.quantity(),
                    l.unitPriceCents(), l.firstOfSku() ? 1 : 0);
        }
        collect(Row.of(null, o.messageId(), o.storeId(), o.placedAtMs(), o.channel(), o.currency(),
                o.totalCents(), o.itemCount(), o.quantity(), o.itemsJson(), items));
    }

    @Override
    public boolean isDeterministic() {
        return true;
    }
}
