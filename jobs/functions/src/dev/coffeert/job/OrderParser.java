package dev.coffeert.job;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.DateTimeException;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonProcessingException;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.json.JsonReadFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.DeserializationFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.json.JsonMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ArrayNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.JsonNodeFactory;

/**
 * The order schema of {@code coffee_orders/schema.py}, checked in the JVM so the job's per-order
 * path never enters Python. It must accept and reject exactly what the pydantic model does, and
 * name the same fields in the same order: {@code tests/unit/job/test_parse_conformance.py} runs
 * both over one corpus (hand-picked edge cases and generated ones) and compares them.
 *
 * <p>No placed_at window here, as in the Python job: an order accepted at ingest must not turn
 * invalid while it waits in Kafka.
 */
public final class OrderParser {
    public static final int MAX_ITEMS = 200;
    public static final long MAX_QUANTITY = 10_000;
    public static final long MAX_UNIT_PRICE_CENTS = 100_000_000;
    public static final int MAX_REASON = 500;
    private static final int MAX_ERRORS = 5;

    private static final String[] ORDER_FIELDS =
            {"message_id", "store_id", "placed_at", "channel", "currency", "items", "total_cents"};
    private static final String[] ITEM_FIELDS =
            {"sku", "name", "category", "origin", "quantity", "unit_price_cents"};
    private static final Set<String> CHANNELS = Set.of("counter", "app", "market", "wholesale");
    private static final Set<String> CATEGORIES = Set.of("drink", "beans", "food", "merch");
    private static final Set<String> ISO_4217 = Set.of((
            "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP "
            + "BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR "
            + "FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES "
            + "KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR "
            + "MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF "
            + "SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS "
            + "UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG").split(" "));

    private static final String STORE_ID = "^[a-z0-9][a-z0-9-]{0,62}$";
    private static final String SKU = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";
    private static final String TEXT = "^[^\\x00-\\x1f\\x7f]+$";
    private static final String CURRENCY = "^[A-Z]{3}$";
    private static final Pattern STORE_ID_RE = Pattern.compile("[a-z0-9][a-z0-9-]{0,62}");
    private static final Pattern SKU_RE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    private static final Pattern TEXT_RE = Pattern.compile("[^\\x00-\\x1f\\x7f]+");
    private static final Pattern CURRENCY_RE = Pattern.compile("[A-Z]{3}");
    private static final Pattern HEX = Pattern.compile("[0-9a-fA-F]+");
    private static final Pattern RFC3339 = Pattern.compile(
            "(\\d{4})-(\\d{2})-(\\d{2})[Tt](\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))?(?:([Zz])|([+-])(\\d{2}):(\\d{2}))");

    // pydantic's JSON parser takes NaN and Infinity (then no int field accepts them) and refuses
    // anything after the value.
    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private OrderParser() {}

    /** One valid order as the job's rows need it (see coffee_orders.records.OrderRow). */
    public record Order(String messageId, String storeId, long placedAtMs, String channel, String currency,
                        long totalCents, int itemCount, int quantity, List<Line> lines, String itemsJson) {}

    /** One order line as the order_items rows and the rollups need it, numbered from 1. */
    public record Line(int lineNo, String sku, String name, String category, String origin, long quantity,
                       long unitPriceCents, boolean firstOfSku) {}

    /** Either {@code order} or {@code reason} is set. */
    public record Result(Order order, String reason) {}

    public static Result parse(byte[] raw) {
        if (raw == null) {
            return new Result(null, "record has no value (a tombstone)");
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(raw)).toString();
        } catch (CharacterCodingException e) {
            return invalidJson("input is not valid UTF-8");
        }
        if (!text.isEmpty() && text.charAt(0) == '\uFEFF') {
            return invalidJson("expected value at line 1 column 1");
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            return invalidJson(e.getOriginalMessage());
        }
        if (root == null || root.isMissingNode()) {
            return invalidJson("EOF while parsing a value at line 1 column 0");
        }
        if (hasLoneSurrogate(root)) {
            return invalidJson("lone leading surrogate in hex escape");
        }
        return new Validation().order(root);
    }

    private static Result invalidJson(String detail) {
        return new Result(null, clip("record: Invalid JSON: " + detail));
    }

    private static String clip(String reason) {
        return reason.length() <= MAX_REASON ? reason : reason.substring(0, MAX_REASON);
    }

    private static boolean hasLoneSurrogate(JsonNode node) {
        if (node.isTextual()) {
            return loneSurrogate(node.textValue());
        }
        if (node.isObject()) {
            Iterator<Map.Entry<String, JsonNode>> fields = node.fields();
            while (fields.hasNext()) {
                Map.Entry<String, JsonNode> field = fields.next();
                if (loneSurrogate(field.getKey()) || hasLoneSurrogate(field.getValue())) {
                    return true;
                }
            }
        } else if (node.isArray()) {
            for (JsonNode child : node) {
                if (hasLoneSurrogate(child)) {
                    return true;
                }
            }
        }
        return false;
    }

    private static boolean loneSurrogate(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c)) {
                if (i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                    i++;
                    continue;
                }
                return true;
            }
            if (Character.isLowSurrogate(c)) {
                return true;
            }
        }
        return false;
    }

    /** One record's checks; collects errors as pydantic does: fields in model order, then extras. */
    private static final class Validation {
        private final List<String> errors = new ArrayList<>();

        private void error(String loc, String message) {
            errors.add((loc.isEmpty() ? "record" : loc) + ": " + message);
        }

        Result order(JsonNode root) {
            if (!root.isObject()) {
                return new Result(null, "record: Input should be a valid dictionary or instance of Order");
            }
            String messageId = uuid(root.get("message_id"));
            String storeId = string(root.get("store_id"), "store_id", STORE_ID_RE, STORE_ID);
            long placedAtMs = placedAt(root.get("placed_at"));
            String channel = literal(root.get("channel"), "channel", CHANNELS, "'counter', 'app', 'market' or 'wholesale'");
            String currency = currency(root.get("currency"));
            int before = errors.size();
            List<Item> lines = items(root.get("items"));
            boolean itemsValid = lines != null && errors.size() == before;
            Long total = integer(root.get("total_cents"), "total_cents", 0, null);
            if (total != null && itemsValid) {
                long sum = 0;
                for (Item line : lines) {
                    sum += line.quantity * line.unitPriceCents;
                }
                if (sum != total) {
                    error("total_cents", "total_cents is " + root.get("total_cents").bigIntegerValue()
                            + " but the lines add up to " + sum);
                }
            }
            extras(root, ORDER_FIELDS, "");
            if (!errors.isEmpty()) {
                return new Result(null, clip(String.join("; ", errors.subList(0, Math.min(MAX_ERRORS, errors.size())))));
            }
            List<Line> numbered = number(lines);
            return new Result(new Order(messageId, storeId, placedAtMs, channel, currency, total, numbered.size(),
                    quantity(numbered), numbered, linesJson(numbered)), null);
        }

        private void extras(JsonNode object, String[] known, String prefix) {
            Iterator<String> names = object.fieldNames();
            while (names.hasNext()) {
                String name = names.next();
                boolean found = false;
                for (String k : known) {
                    found |= k.equals(name);
                }
                if (!found) {
                    error(prefix + name, "Extra inputs are not permitted");
                }
            }
        }

        private boolean present(JsonNode node, String loc) {
            if (node == null) {
                error(loc, "Field required");
                return false;
            }
            return true;
        }

        /** The node's string, or null (and an error) when it is another JSON type. */
        private String textual(JsonNode node, String loc) {
            if (!node.isTextual()) {
                error(loc, "Input should be a valid string");
                return null;
            }
            return node.textValue();
        }

        private String string(JsonNode node, String loc, Pattern pattern, String patternText) {
            String value = present(node, loc) ? textual(node, loc) : null;
            if (value == null) {
                return null;
            }
            if (!pattern.matcher(value).matches()) {
                error(loc, "String should match pattern '" + patternText + "'");
                return null;
            }
            return value;
        }

        private String text(JsonNode node, String loc) {
            String value = textual(node, loc);
            if (value == null) {
                return null;
            }
            int length = value.codePointCount(0, value.length());
            if (length < 1) {
                error(loc, "String should have at least 1 character");
                return null;
            }
            if (length > 200) {
                error(loc, "String should have at most 200 characters");
                return null;
            }
            if (!TEXT_RE.matcher(value).matches()) {
                error(loc, "String should match pattern '" + TEXT + "'");
                return null;
            }
            return value;
        }

        private String literal(JsonNode node, String loc, Set<String> allowed, String expected) {
            if (!present(node, loc)) {
                return null;
            }
            if (!node.isTextual() || !allowed.contains(node.textValue())) {
                error(loc, "Input should be " + expected);
                return null;
            }
            return node.textValue();
        }

        private String currency(JsonNode node) {
            String value = string(node, "currency", CURRENCY_RE, CURRENCY);
            if (value != null && !ISO_4217.contains(value)) {
                error("currency", value + " is not an ISO 4217 currency code");
                return null;
            }
            return value;
        }

        /** A JSON integer (strict: no floats, booleans or strings) within [min, max]. */
        private Long integer(JsonNode node, String loc, long min, Long max) {
            if (!present(node, loc)) {
                return null;
            }
            if (!node.isIntegralNumber()) {
                error(loc, "Input should be a valid integer");
                return null;
            }
            if (node.bigIntegerValue().compareTo(java.math.BigInteger.valueOf(min)) < 0) {
                error(loc, "Input should be greater than or equal to " + min);
                return null;
            }
            if (max != null && node.bigIntegerValue().compareTo(java.math.BigInteger.valueOf(max)) > 0) {
                error(loc, "Input should be less than or equal to " + max);
                return null;
            }
            // Above Long.MAX_VALUE only total_cents can be (no max): it cannot match any sum.
            return node.canConvertToLong() ? node.longValue() : Long.MIN_VALUE;
        }

        private String uuid(JsonNode node) {
            if (!present(node, "message_id")) {
                return null;
            }
            if (!node.isTextual()) {
                error("message_id", "UUID input should be a string, bytes or UUID object");
                return null;
            }
            String hex = uuidHex(node.textValue());
            if (hex == null) {
                error("message_id", "Input should be a valid UUID");
                return null;
            }
            hex = hex.toLowerCase(java.util.Locale.ROOT);
            return hex.substring(0, 8) + "-" + hex.substring(8, 12) + "-" + hex.substring(12, 16) + "-"
                    + hex.substring(16, 20) + "-" + hex.substring(20);
        }

        /** The 32 hex digits of a simple, hyphenated, braced or urn:uuid: UUID, as Rust's uuid crate reads them. */
        private static String uuidHex(String s) {
            if (s.length() == 32) {
                return HEX.matcher(s).matches() ? s : null;
            }
            if (s.length() == 45 && s.startsWith("urn:uuid:")) {
                s = s.substring(9);
            } else if (s.length() == 38 && s.charAt(0) == '{' && s.charAt(37) == '}') {
                s = s.substring(1, 37);
            }
            if (s.length() != 36 || s.charAt(8) != '-' || s.charAt(13) != '-' || s.charAt(18) != '-'
                    || s.charAt(23) != '-') {
                return null;
            }
            String hex = s.substring(0, 8) + s.substring(9, 13) + s.substring(14, 18) + s.substring(19, 23)
                    + s.substring(24);
            return HEX.matcher(hex).matches() ? hex : null;
        }

        /** Milliseconds since the epoch, exact (the fraction truncated, as pydantic keeps microseconds). */
        private long placedAt(JsonNode node) {
            if (!present(node, "placed_at")) {
                return 0;
            }
            if (!node.isTextual()) {
                error("placed_at", "placed_at must be a string (RFC 3339 date-time with offset)");
                return 0;
            }
            Matcher m = RFC3339.matcher(node.textValue());
            if (!m.matches()) {
                error("placed_at", "placed_at must be an RFC 3339 date-time with offset, e.g. 2025-03-01T08:15:02+01:00");
                return 0;
            }
            int year = Integer.parseInt(m.group(1));
            int hour = Integer.parseInt(m.group(4));
            int minute = Integer.parseInt(m.group(5));
            int second = Integer.parseInt(m.group(6));
            int offsetMinutes = 0;
            if (m.group(9) != null) {
                int oh = Integer.parseInt(m.group(10));
                int om = Integer.parseInt(m.group(11));
                if (oh > 23 || om > 59) {
                    error("placed_at", "Input should be a valid datetime or date, invalid timezone sign");
                    return 0;
                }
                offsetMinutes = (m.group(9).equals("-") ? -1 : 1) * (oh * 60 + om);
            }
            if (year < 1) {
                error("placed_at", "Input should be a valid datetime, year 0 is out of range");
                return 0;
            }
            LocalDate date;
            try {
                date = LocalDate.of(year, Integer.parseInt(m.group(2)), Integer.parseInt(m.group(3)));
            } catch (DateTimeException e) {
                error("placed_at", "Input should be a valid datetime or date, day value is outside expected range");
                return 0;
            }
            if (hour > 23 || minute > 59 || second > 59) {
                error("placed_at", "Input should be a valid datetime or date, unexpected extra characters at the end of the input");
                return 0;
            }
            String fraction = m.group(7) == null ? "" : m.group(7);
            long millis = fraction.isEmpty() ? 0 : Long.parseLong((fraction + "00").substring(0, 3));
            long epochSecond = date.toEpochDay() * 86_400L + hour * 3600L + minute * 60L + second - offsetMinutes * 60L;
            return epochSecond * 1000 + millis;
        }

        private record Item(String sku, String name, String category, String origin, long quantity,
                            long unitPriceCents) {}

        private List<Item> items(JsonNode node) {
            if (!present(node, "items")) {
                return null;
            }
            if (!node.isArray()) {
                error("items", "Input should be a valid list");
                return null;
            }
            if (node.size() < 1) {
                error("items", "List should have at least 1 item after validation, not 0");
                return null;
            }
            if (node.size() > MAX_ITEMS) {
                error("items", "List should have at most " + MAX_ITEMS + " items after validation, not " + node.size());
                return null;
            }
            List<Item> lines = new ArrayList<>(node.size());
            for (int i = 0; i < node.size(); i++) {
                lines.add(item(node.get(i), "items." + i));
            }
            return lines;
        }

        private Item item(JsonNode node, String loc) {
            if (!node.isObject()) {
                error(loc, "Input should be a valid dictionary or instance of OrderItem");
                return null;
            }
            String sku = string(node.get("sku"), loc + ".sku", SKU_RE, SKU);
            JsonNode nameNode = node.get("name");
            String name = present(nameNode, loc + ".name") ? text(nameNode, loc + ".name") : null;
            String category = literal(node.get("category"), loc + ".category", CATEGORIES,
                    "'drink', 'beans', 'food' or 'merch'");
            JsonNode originNode = node.get("origin");
            String origin = originNode == null || originNode.isNull() ? null : text(originNode, loc + ".origin");
            Long quantity = integer(node.get("quantity"), loc + ".quantity", 1, MAX_QUANTITY);
            Long price = integer(node.get("unit_price_cents"), loc + ".unit_price_cents", 0, MAX_UNIT_PRICE_CENTS);
            extras(node, ITEM_FIELDS, loc + ".");
            return quantity == null || price == null ? null
                    : new Item(sku, name, category, origin, quantity, price);
        }

        private static List<Line> number(List<Item> items) {
            List<Line> lines = new ArrayList<>(items.size());
            Set<String> seen = new HashSet<>();
            for (Item i : items) {
                lines.add(new Line(lines.size() + 1, i.sku, i.name, i.category, i.origin, i.quantity,
                        i.unitPriceCents, seen.add(i.sku)));
            }
            return lines;
        }

        private static int quantity(List<Line> lines) {
            long sum = 0;
            for (Line line : lines) {
                sum += line.quantity();
            }
            return (int) sum;
        }

        /** [[line_no, sku, name, category, origin, quantity, unit_price_cents, first_of_sku], ...]. */
        private static String linesJson(List<Line> lines) {
            ArrayNode out = JsonNodeFactory.instance.arrayNode(lines.size());
            for (Line line : lines) {
                ArrayNode row = out.addArray();
                row.add(line.lineNo()).add(line.sku()).add(line.name()).add(line.category());
                if (line.origin() == null) {
                    row.addNull();
                } else {
                    row.add(line.origin());
                }
                row.add(line.quantity()).add(line.unitPriceCents()).add(line.firstOfSku() ? 1 : 0);
            }
            return out.toString();
        }
    }
}
