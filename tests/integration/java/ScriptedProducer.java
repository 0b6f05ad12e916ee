// A producer that is not ours: the official Java client (kafka-clients, from the
// local broker's own jars), driven by a script the interoperability tests write.
//
//   java -cp <libs>/*:<classes> ScriptedProducer <bootstrap> <topic> <compression> <script> [<transactional.id>]
//
// Script lines (keys and values base64, "-" for a null key):
//   R <key> <value>   send one record (the client's default partitioner: murmur2 of the key)
//   BEGIN | COMMIT    begin / commit a transaction
//   ABORT             flush, so the records are in the log, then abort the transaction
//   PAUSE             flush, print "paused", wait for a line on stdin (an open transaction)
// Exits 0 once every record sent is acknowledged; prints "sent <n>".

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class ScriptedProducer {
    private ScriptedProducer() {
    }

    private static byte[] decode(String field) {
        return "-".equals(field) ? null : Base64.getDecoder().decode(field);
    }

    public static void main(String[] args) throws Exception {
        String topic = args[1];
        boolean transactional = args.length > 4;
        Properties config = new Properties();
        config.put("bootstrap.servers", args[0]);
        config.put("compression.type", args[2]);
        config.put("acks", "all");
        config.put("linger.ms", "20");
        config.put("batch.size", String.valueOf(256 * 1024));
        config.put("max.request.size", String.valueOf(4 * 1024 * 1024));
        config.put("key.serializer", ByteArraySerializer.class.getName());
        config.put("value.serializer", ByteArraySerializer.class.getName());
        if (transactional) {
            config.put("transactional.id", args[4]);
        }
        List<String> script = Files.readAllLines(Path.of(args[3]), StandardCharsets.US_ASCII);
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(config)) {
            if (transactional) {
                producer.initTransactions();
            }
            for (String line : script) {
                String[] field = line.split(" ");
                switch (field[0]) {
                    case "R" -> sent.add(producer.send(new ProducerRecord<>(topic, decode(field[1]), decode(field[2]))));
                    case "BEGIN" -> producer.beginTransaction();
                    case "COMMIT" -> producer.commitTransaction();
                    case "ABORT" -> {
                        producer.flush();
                        producer.abortTransaction();
                    }
                    case "PAUSE" -> {
                        producer.flush();
                        System.out.println("paused");
                        System.out.flush();
                        stdin.readLine();
                    }
                    default -> throw new IllegalArgumentException("bad script line: " + line);
                }
            }
            producer.flush();
            for (Future<RecordMetadata> future : sent) {
                future.get();
            }
        }
        System.out.println("sent " + sent.size());
    }
}
