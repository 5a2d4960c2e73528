package dev.coffeert.job;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Reads base64 records, one per line ("-" for a tombstone), and prints one JSON verdict per line.
 * Only for the conformance test, which compares these verdicts with the pydantic model's.
 */
public final class ParseOrderCli {
    private ParseOrderCli() {}

    public static void main(String[] args) throws Exception {
        ObjectMapper json = new ObjectMapper();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        for (String line; (line = in.readLine()) != null; ) {
            byte[] raw = line.equals("-") ? null : Base64.getDecoder().decode(line);
            OrderParser.Result result = OrderParser.parse(raw);
            ObjectNode verdict = json.createObjectNode();
            OrderParser.Order o = result.order();
            if (o == null) {
                verdict.put("reason", result.reason());
            } else {
                verdict.put("message_id", o.messageId()).put("store_id", o.storeId())
                        .put("placed_at_ms", o.placedAtMs()).put("channel", o.channel())
                        .put("currency", o.currency()).put("total_cents", o.totalCents())
                        .put("item_count", o.itemCount()).put("quantity", o.quantity())
                        .put("items_json", o.itemsJson());
            }
            out.println(json.writeValueAsString(verdict));
        }
        out.flush();
    }
}
