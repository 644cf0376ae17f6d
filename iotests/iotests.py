"""Helpers for qblockd's iotests: QEMU-style tests that log QMP traffic and
compare it with golden output written by QEMU 7.2 itself.

Standard library only. `check` sets QBLOCKD_IOTESTS_PROG to "qblockd" or
"qemu" and TEST_DIR to a scratch directory.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROG = os.environ.get('QBLOCKD_IOTESTS_PROG', 'qblockd')
# check gives each test its own directory; a test started by hand makes a private one.
TEST_DIR = os.environ.get('TEST_DIR') or tempfile.mkdtemp(prefix='qblockd-iotest-')
QBLOCKD = os.environ.get('QBLOCKD_PROG', os.path.join(REPO, 'bin', 'qblockd'))
QEMU = os.environ.get('QEMU_PROG', 'qemu-system-x86_64')
QSD = os.environ.get('QSD_PROG', 'qemu-storage-daemon')
QEMU_IMG = os.environ.get('QEMU_IMG_PROG', 'qemu-img')
QEMU_IO = os.environ.get('QEMU_IO_PROG', 'qemu-io')

_sock_counter = 0


def log(message=''):
    if not isinstance(message, str):
        message = json.dumps(message, sort_keys=True)
    print(message)
    sys.stdout.flush()


def notrun(reason):
    """Stops the test and tells check it could not run."""
    print('NOTRUN: ' + reason)
    sys.exit(77)


def skip_if_missing(*binaries):
    for binary in binaries:
        if not any(os.access(os.path.join(d, binary), os.X_OK) for d in os.environ.get('PATH', '').split(':')):
            if not os.path.isabs(binary) or not os.access(binary, os.X_OK):
                notrun(binary + ' is not installed')


def scratch(name):
    return os.path.join(TEST_DIR, name)


# ---- filters -------------------------------------------------------------

def filter_testfiles(text):
    return text.replace(TEST_DIR, 'TEST_DIR')


def filter_generated_node_ids(text):
    return re.sub(r'#block[0-9]+', '#blockNNN', text)


def filter_qmp(value):
    """Timestamps, generated node names and scratch paths out of a reply or event."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == 'timestamp':
                out[key] = {'seconds': 'SECS', 'microseconds': 'USECS'}
            else:
                out[key] = filter_qmp(item)
        return out
    if isinstance(value, list):
        return [filter_qmp(item) for item in value]
    if isinstance(value, str):
        return filter_generated_node_ids(filter_testfiles(value))
    return value


def project_node(node):
    """The members of BlockDeviceInfo that clients read."""
    keep = ('node-name', 'drv', 'ro', 'dirty-bitmaps')
    out = {key: node[key] for key in keep if key in node}
    out['virtual-size'] = node['image']['virtual-size']
    return out


# ---- images --------------------------------------------------------------

def qemu_img(*args, check=True):
    # A test that needs an image tool it does not have reports itself as not run, by name.
    skip_if_missing(QEMU_IMG)
    result = subprocess.run([QEMU_IMG] + [str(a) for a in args], capture_output=True, text=True)
    if check and result.returncode not in (0,):
        raise RuntimeError('qemu-img %s failed: %s' % (' '.join(map(str, args)), result.stderr))
    return result


def qemu_img_create(path, size, fmt='qcow2', *options):
    qemu_img('create', '-f', fmt, *options, path, size)


def qemu_img_info(path):
    return json.loads(qemu_img('info', '--output=json', '-U', path).stdout)


def qemu_img_check_log(path):
    """Logs what `qemu-img check` found: the fields that tell corruption and leaks."""
    result = qemu_img('check', '--output=json', path, check=False)
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    log('qemu-img check: rc=%d corruptions=%s leaks=%s' % (
        result.returncode, report.get('corruptions', 0), report.get('leaks', 0)))


def log_image_bitmaps(path):
    info = qemu_img_info(path)
    bitmaps = info.get('format-specific', {}).get('data', {}).get('bitmaps', [])
    log('image bitmaps: ' + json.dumps(bitmaps, sort_keys=True))


def qemu_io(path, *commands, fmt='qcow2'):
    skip_if_missing(QEMU_IO)
    args = [QEMU_IO, '-f', fmt]
    for command in commands:
        args += ['-c', command]
    subprocess.run(args + [path], capture_output=True, check=True)


# ---- the daemon under test -------------------------------------------------

def client_log(*args):
    """Runs an NBD client (qemu-img, qemu-io, qemu-nbd, nbdinfo, nbdcopy) and logs
    what it printed and its exit status; scratch paths and qemu-io timings are filtered."""
    skip_if_missing(args[0])
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)
    text = filter_testfiles(result.stdout + result.stderr)
    text = re.sub(r'^.* ops; .*\n', '', text, flags=re.M)
    log(text.rstrip('\n'))
    log('exit %d' % result.returncode)


def nbd_uri(sock, export=''):
    return 'nbd+unix:///%s?socket=%s' % (export, sock)


class QmpClient:
    """One QMP connection: reads replies, keeps the events met on the way."""

    def __init__(self, sock_path=None):
        self.sock = None
        self.buffer = b''
        self.events = []
        self.greeting = None
        if sock_path:
            self.connect(sock_path)

    def connect(self, sock_path, negotiate=False):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock_path)
        self.buffer = b''
        self.greeting = self.read_greeting()
        if negotiate:
            self.qmp('qmp_capabilities')
        return self

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def read_line(self, timeout=10):
        """The next line; socket.timeout if none arrives in time (the buffer stays usable)."""
        deadline = time.time() + timeout
        while b'\n' not in self.buffer:
            self.sock.settimeout(max(0.001, deadline - time.time()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError('connection closed')
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b'\n', 1)
        return line.decode('utf-8', 'replace').rstrip('\r')

    def read_greeting(self, timeout=10):
        """The greeting. QEMU can send its start-up RESUME event first to a client that connects early; it is dropped."""
        while True:
            message = json.loads(self.read_line(timeout))
            if 'QMP' in message:
                return message

    def send_raw(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def raw_log(self, line):
        """Sends one request line exactly as written; logs it and the reply line exactly as received."""
        self.send_raw(line + '\n')
        log('>> ' + line)
        log('<< ' + self.read_line())

    def read_message(self):
        """The next reply; events met on the way are kept for get_qmp_events()."""
        while True:
            message = json.loads(self.read_line())
            if 'event' in message:
                self.events.append(message)
                continue
            return message

    def qmp(self, cmd, **args):
        request = {'execute': cmd}
        if args:
            request['arguments'] = {key.replace('_', '-'): value for key, value in args.items()}
        self.send_raw(json.dumps(request) + '\n')
        return self.read_message()

    def qmp_log(self, cmd, filters=(), **args):
        request = {'execute': cmd}
        arguments = {key.replace('_', '-'): value for key, value in args.items()}
        if arguments:
            request['arguments'] = arguments
        log(filter_generated_node_ids(filter_testfiles(json.dumps(request, sort_keys=True))))
        reply = self.qmp(cmd, **args)
        for apply in filters:
            reply = apply(reply)
        log(json.dumps(filter_qmp(reply), sort_keys=True))
        return reply

    def get_qmp_events(self, wait=0.0):
        deadline = time.time() + wait
        while True:
            try:
                line = self.read_line(timeout=max(0.001, deadline - time.time()))
            except (OSError, EOFError):  # timeout, or the daemon closed the connection
                break
            self.events.append(json.loads(line))
        events, self.events = self.events, []
        return events

    def log_events(self, wait=0.2):
        for event in self.get_qmp_events(wait):
            log(json.dumps(filter_qmp(event), sort_keys=True))

    def log_events_until(self, *names, timeout=30):
        """Logs events as they come until one named NAMES arrives (e.g. a job's BLOCK_JOB_COMPLETED)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            events = self.get_qmp_events(0.1)
            for event in events:
                log(json.dumps(filter_qmp(event), sort_keys=True))
            found = [event for event in events if event.get('event') in names]
            if found:
                return found[0]
        log('timed out waiting for ' + ' or '.join(names))
        return None

    def hmp_qemu_io(self, node, command, log_reply=True):
        line = 'qemu-io %s "%s"' % (node, command)
        reply = self.qmp('human-monitor-command', command_line=line)
        if log_reply:
            log('qemu-io %s "%s": %s' % (node, command, json.dumps(reply, sort_keys=True)))
        return reply

    def bitmaps(self, node):
        for info in self.qmp('query-named-block-nodes')['return']:
            if info['node-name'] == node:
                return info.get('dirty-bitmaps', [])
        return None

    def log_bitmaps(self, node):
        log('%s bitmaps: %s' % (node, json.dumps(self.bitmaps(node), sort_keys=True)))

    def log_sha256(self, node, name):
        reply = self.qmp('x-debug-block-dirty-bitmap-sha256', node=node, name=name)
        log('sha256 %s/%s: %s' % (node, name, json.dumps(reply, sort_keys=True)))
        return reply.get('return', {}).get('sha256')


class VM(QmpClient):
    """qemu-system-x86_64 -M none, qemu-storage-daemon, or qblockd with the same arguments."""

    def __init__(self, storage_daemon=False):
        global _sock_counter
        _sock_counter += 1
        self.storage_daemon = storage_daemon
        self.sock_path = scratch('qmp-%d-%d.sock' % (os.getpid(), _sock_counter))
        self.args = []
        self.process = None
        self.monitors = []
        QmpClient.__init__(self)

    def add_blockdev(self, spec):
        self.args += ['--blockdev', spec if isinstance(spec, str) else json.dumps(spec)]
        return self

    def add_drive(self, spec):
        self.args += ['-drive', spec]
        return self

    def add_args(self, *args):
        self.args += list(args)
        return self

    def add_monitor(self):
        """Another QMP monitor on its own socket; returns the socket path to connect a QmpClient to."""
        index = len(self.monitors) + 1
        path = '%s.%d' % (self.sock_path, index)
        if self.storage_daemon:
            self.args += ['--chardev', 'socket,id=m%d,path=%s,server=on,wait=off' % (index, path),
                          '--monitor', 'chardev=m%d' % index]
        else:
            self.args += ['-qmp', 'unix:%s,server=on,wait=off' % path]
        self.monitors.append(path)
        return path

    def command_line(self):
        if self.storage_daemon:
            monitor = ['--chardev', 'socket,id=m0,path=%s,server=on,wait=off' % self.sock_path, '--monitor', 'chardev=m0']
            prog = QBLOCKD if PROG == 'qblockd' else QSD
            return [prog] + self.args + monitor
        prog = QBLOCKD if PROG == 'qblockd' else QEMU
        return [prog, '-M', 'none', '-nodefaults', '-display', 'none'] + self.args + [
            '-qmp', 'unix:%s,server=on,wait=off' % self.sock_path]

    def launch(self, negotiate=True):
        for path in [self.sock_path] + self.monitors:
            if os.path.exists(path):
                os.unlink(path)
        self.process = subprocess.Popen(self.command_line(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while not all(os.path.exists(path) for path in [self.sock_path] + self.monitors):
            if self.process.poll() is not None:
                raise RuntimeError('daemon exited: ' + self.process.stderr.read().decode())
            if time.time() > deadline:
                raise RuntimeError('daemon did not create its socket')
            time.sleep(0.01)
        while True:
            try:
                self.connect(self.sock_path, negotiate)
                return self
            except ConnectionRefusedError:
                # The socket file appears at bind(), a moment before listen().
                if self.process.poll() is not None:
                    raise RuntimeError('daemon exited: ' + self.process.stderr.read().decode())
                if time.time() > deadline:
                    raise
                time.sleep(0.01)

    def launch_error(self):
        """Starts a daemon that must refuse its command line; returns its exit status and message.

        The message loses the program name and, where QEMU prefixes it, the option it is
        about ("--blockdev ARG: "), so QEMU's and qblockd's messages compare.
        """
        process = subprocess.run(self.command_line(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=20)
        message = process.stderr.decode().strip().split(': ', 1)[-1]
        for option, argument in zip(self.args, self.args[1:]):
            prefix = '%s %s: ' % (option, argument)
            if message.startswith(prefix):
                message = message[len(prefix):]
        return process.returncode, message

    def shutdown(self):
        try:
            self.qmp('quit')
        except (EOFError, OSError):
            pass
        self.process.wait(timeout=20)
        self._close()

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)
        self._close()

    def _close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        for path in [self.sock_path] + self.monitors:
            if os.path.exists(path):
                os.unlink(path)


# ---- launched as QEMU's own Python harness launches QEMU ----------------------
#
# qemu.machine.QEMUMachine (and QEMUQtestMachine, which QEMU's iotests use) starts
# the emulator with a fixed argument list and talks to it over sockets it created
# itself. HarnessVM does the same with the standard library only, so a test written
# against that harness runs unchanged against qblockd:
#
#   -display none -vga none
#   -chardev socket,id=mon,fd=N      N: one end of a socketpair, inherited (monitor='fd')
#   -chardev socket,id=mon,path=P    P: a socket the harness listens on (monitor='path',
#                                    the QEMU 7.2 harness; the emulator connects to it)
#   -mon chardev=mon,mode=control
#   [-machine TYPE]
#   -qtest unix:path=Q -accel qtest  Q: a socket the harness listens on
#   -nodefaults -display none -accel qtest   (iotests' QEMU_OPTIONS)
#   ...the test's own arguments
#
# stdout and stderr both go to one log file, which the test may compare after shutdown.

_accel_qtest = None


def qemu_has_qtest_accel():
    """Debian's qemu-system-x86_64 7.2 is built without the qtest accelerator."""
    global _accel_qtest
    if _accel_qtest is None:
        result = subprocess.run([QEMU, '-accel', 'help'], capture_output=True, text=True)
        _accel_qtest = 'qtest' in result.stdout.split()
    return _accel_qtest


def filter_qemu_prog(text):
    """Error lines start with the program's name: qblockd's or QEMU's."""
    return re.sub(r'^(%s|%s|qblockd|qemu-system-x86_64): ' % (re.escape(QBLOCKD), re.escape(QEMU)), 'QEMU_PROG: ',
                  text, flags=re.M)


def filter_qemu_io_timing(text):
    """qemu-io's report line, without its timing (as QEMU's iotests filter it)."""
    return re.sub(r'[0-9]* ops; [0-9/:. sec]* \([0-9/.inf]* [EPTGMKiBbytes]*/sec and [0-9/.inf]* ops/sec\)',
                  'X ops; XX:XX:XX.X (XXX YYY/sec and XXX ops/sec)', text)


def filter_qtest_log(text):
    """The qtest exchange QEMU logs on stderr, without its timings; OPENED/CLOSED dropped as iotests do."""
    text = re.sub(r'^\[I \+?[0-9.]+\] (OPENED|CLOSED)\n', '', text, flags=re.M)
    return re.sub(r'^\[([RS]) \+[0-9.]+\]', r'[\1 +TIME]', text, flags=re.M)


class HarnessVM(QmpClient):
    """qblockd or qemu-system-x86_64, launched exactly as QEMUQtestMachine with iotests' options."""

    def __init__(self, monitor='fd', qtest=True, machine=None, iotests_options=True):
        global _sock_counter
        _sock_counter += 1
        QmpClient.__init__(self)
        self.name = 'qemu-%d-%d' % (os.getpid(), _sock_counter)
        self.monitor_mode = monitor
        self.use_qtest = qtest
        self.machine = machine
        self.iotests_options = iotests_options
        self.args = []
        self.num_drives = 0
        self.process = None
        self.log_path = scratch(self.name + '.log')
        self.monitor_path = scratch(self.name + '-monitor.sock')
        self.qtest_path = scratch(self.name + '-qtest.sock')
        self.qtest_sock = None
        self.qtest_file = None
        self.exit_code = None
        self.output = None

    def add_args(self, *args):
        self.args += list(args)
        return self

    def add_drive(self, path, opts='', interface='virtio', img_format='qcow2'):
        """iotests' VM.add_drive: if=virtio by default, cache and aio spelled out."""
        options = ['if=%s' % interface, 'id=drive%d' % self.num_drives]
        if path is not None:
            options += ['file=%s' % path, 'format=%s' % img_format, 'cache=writeback', 'aio=threads']
        if opts:
            options.append(opts)
        self.args += ['-drive', ','.join(options)]
        self.num_drives += 1
        return self

    def add_blockdev(self, spec):
        self.args += ['-blockdev', spec if isinstance(spec, str) else json.dumps(spec)]
        return self

    def add_device(self, spec):
        self.args += ['-device', spec]
        return self

    def _accel(self):
        if PROG == 'qemu' and not qemu_has_qtest_accel():
            return 'tcg'
        return 'qtest'

    def base_args(self, monitor_fd=None):
        args = ['-display', 'none', '-vga', 'none']
        if monitor_fd is not None:
            args += ['-chardev', 'socket,id=mon,fd=%d' % monitor_fd]
        else:
            args += ['-chardev', 'socket,id=mon,path=%s' % self.monitor_path]
        args += ['-mon', 'chardev=mon,mode=control']
        if self.machine is not None:
            args += ['-machine', self.machine]
        if self.use_qtest:
            args += ['-qtest', 'unix:path=%s' % self.qtest_path, '-accel', self._accel()]
        if self.iotests_options:
            args += ['-nodefaults', '-display', 'none', '-accel', self._accel()]
        return args

    def launch(self):
        """Starts the program; returns True once QMP and qtest are connected, False if it exited."""
        prog = QBLOCKD if PROG == 'qblockd' else QEMU
        listeners = []
        qtest_listener = None
        if self.use_qtest:
            qtest_listener = socket.socket(socket.AF_UNIX)
            qtest_listener.bind(self.qtest_path)
            qtest_listener.listen(1)
            listeners.append(qtest_listener)
        child_end = None
        monitor_listener = None
        if self.monitor_mode == 'fd':
            child_end, self.sock = socket.socketpair()
            os.set_inheritable(child_end.fileno(), True)
            command = [prog] + self.base_args(child_end.fileno()) + self.args
        else:
            monitor_listener = socket.socket(socket.AF_UNIX)
            monitor_listener.bind(self.monitor_path)
            monitor_listener.listen(1)
            listeners.append(monitor_listener)
            command = [prog] + self.base_args() + self.args
        log_file = open(self.log_path, 'wb')
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                        close_fds=False)
        log_file.close()
        if child_end is not None:
            child_end.close()
        try:
            if monitor_listener is not None:
                self.sock = self._accept(monitor_listener)
            self.buffer = b''
            self.greeting = self.read_greeting(timeout=20)
            self.qmp('qmp_capabilities')
            if qtest_listener is not None:
                self.qtest_sock = self._accept(qtest_listener)
                self.qtest_file = self.qtest_sock.makefile('r')
            return True
        except (OSError, EOFError, ValueError):
            self._wait_exit()
            return False
        finally:
            for listener in listeners:
                listener.close()

    def _accept(self, listener):
        deadline = time.time() + 20
        while True:
            listener.settimeout(0.1)
            try:
                connection, _ = listener.accept()
                connection.settimeout(None)
                return connection
            except socket.timeout:
                if self.process.poll() is not None:
                    raise EOFError('exited before connecting')
                if time.time() > deadline:
                    raise

    def qtest(self, command):
        self.qtest_sock.sendall((command + '\n').encode())
        return self.qtest_file.readline()

    def qtest_log(self, command):
        log('qtest %s -> %s' % (command, self.qtest(command).rstrip('\n')))

    def shutdown(self):
        try:
            self.qmp('quit')
        except (EOFError, OSError):
            pass
        self._wait_exit()

    def _wait_exit(self):
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for sock in (self.sock, self.qtest_sock):
            if sock is not None:
                sock.close()
        self.exit_code = self.process.returncode
        with open(self.log_path, encoding='utf-8', errors='replace') as output:
            self.output = output.read()
        for path in (self.monitor_path, self.qtest_path):
            if os.path.exists(path):
                os.unlink(path)

    def get_log(self):
        """What the program printed on stdout and stderr, filtered as iotests filter QEMU's log."""
        return filter_qemu_io_timing(filter_qtest_log(filter_qemu_prog(filter_testfiles(self.output or ''))))

    def log_launch_failure(self):
        log('exit code %s' % self.exit_code)
        log(self.get_log().rstrip('\n'))
