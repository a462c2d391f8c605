// Test program for tests/hsperf.rs and benches/hsperf.rs: a JVM whose heap the test steers over
// stdin, one command a line, each answered by one line "ok RETAINED_MIB" once done.
//   gc          System.gc()
//   retain N    keep N more MiB reachable (64 KiB arrays, not humongous in G1), then System.gc()
//   churn N     allocate N MiB of garbage (young collections)
//   exit        exit
// With the argument "busy", a daemon thread also allocates garbage all the time (for the bench).
// Compiled to Retain.class next to it (javac --release 11 Retain.java) so that a JRE suffices.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;

public class Retain {
    static final List<byte[]> KEPT = new ArrayList<>();
    static volatile byte[] sink;

    static void churn(long mib) {
        for (long i = 0; i < mib * 16; i++) {
            sink = new byte[64 * 1024];
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("busy")) {
            Thread t = new Thread(() -> {
                while (true) {
                    churn(1);
                    try {
                        Thread.sleep(5);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
            t.setDaemon(true);
            t.start();
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        System.out.println("ready");
        String line;
        while ((line = in.readLine()) != null) {
            String[] w = line.trim().split("\\s+");
            switch (w[0]) {
                case "gc":
                    System.gc();
                    break;
                case "retain":
                    for (int i = 0; i < Integer.parseInt(w[1]) * 16; i++) {
                        byte[] b = new byte[64 * 1024];
                        b[i % b.length] = 1;
                        KEPT.add(b);
                    }
                    System.gc();
                    break;
                case "churn":
                    churn(Long.parseLong(w[1]));
                    break;
                case "exit":
                    return;
                default:
                    System.out.println("unknown " + w[0]);
                    continue;
            }
            System.out.println("ok " + KEPT.size() / 16);
        }
    }
}
