package dev.coffeert.job;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Properties;
import org.postgresql.plugin.AuthenticationPlugin;
import org.postgresql.plugin.AuthenticationRequestType;
import org.postgresql.util.PSQLException;
import org.postgresql.util.PSQLState;

/**
 * The PostgreSQL JDBC driver's authentication plugin of the job's sinks: the password is read from
 * the file named by the connection's {@code passwordFile} property, each time the driver connects
 * (in the TaskManager). The sinks' URL names it with
 * {@code authenticationPluginClassName=dev.coffeert.job.PasswordFile&passwordFile=/path}, so the
 * password is in no table option, job graph, plan or log.
 *
 * <p>As {@code coffee_jobconfig.model.read_secret}: one trailing line break is dropped; a missing,
 * unreadable or empty file fails the connection with a message naming the file, never its content.
 */
public final class PasswordFile implements AuthenticationPlugin {
    public static final String PROPERTY = "passwordFile";
    private static final int MAX_BYTES = 65_536;

    private final String path;

    public PasswordFile(Properties info) {
        this.path = info.getProperty(PROPERTY);
    }

    @Override
    public char[] getPassword(AuthenticationRequestType type) throws PSQLException {
        if (path == null || path.isEmpty()) {
            throw failure("the JDBC URL names no " + PROPERTY + " for " + PasswordFile.class.getName());
        }
        byte[] raw;
        try {
            if (Files.isDirectory(Path.of(path))) {
                throw failure("the Postgres password file " + path + " is a directory, not a file");
            }
            raw = Files.readAllBytes(Path.of(path));
        } catch (NoSuchFileException e) {
            throw failure("the Postgres password file " + path + " does not exist");
        } catch (FileSystemException e) {
            String reason = e.getReason() != null ? e.getReason() : e.getClass().getSimpleName();
            throw failure("the Postgres password file " + path + " cannot be read: " + reason);
        } catch (IOException | SecurityException e) {
            throw failure("the Postgres password file " + path + " cannot be read: " + e.getClass().getSimpleName());
        }
        try {
            if (raw.length > MAX_BYTES) {
                throw failure("the Postgres password file " + path + " is larger than 64 KiB: not a secret value");
            }
            CharBuffer decoded;
            try {
                decoded = StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(raw));
            } catch (CharacterCodingException e) {
                throw failure("the Postgres password file " + path + " is not UTF-8 text");
            }
            char[] chars = new char[decoded.remaining()];
            decoded.get(chars);
            Arrays.fill(decoded.array(), '\0');
            int end = chars.length;
            if (end > 0 && chars[end - 1] == '\n') {
                end--;
            }
            if (end > 0 && chars[end - 1] == '\r') {
                end--;
            }
            boolean blank = true;
            for (int i = 0; i < end && blank; i++) {
                blank = Character.isWhitespace(chars[i]);
            }
            if (blank) {
                Arrays.fill(chars, '\0');
                throw failure("the Postgres password file " + path + " is empty");
            }
            char[] password = Arrays.copyOf(chars, end);
            Arrays.fill(chars, '\0');
            return password;
        } finally {
            Arrays.fill(raw, (byte) 0);
        }
    }

    private static PSQLException failure(String message) {
        return new PSQLException(message, PSQLState.INVALID_PASSWORD);
    }
}
